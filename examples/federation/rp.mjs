// A relying party that signs people in through the example's OpenID provider with the
// authorization code flow and PKCE (openid-client), and shows who signed in and how: the
// ID token's `sub`, `amr` and `acr`.

import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';

import * as client from 'openid-client';

import { escapeHtml, page, readForm, sendPage, sendStylesheet } from './html.mjs';

const env = process.env;
const HOST = env.RP_HOST ?? '127.0.0.1';
const PORT = Number(env.RP_PORT ?? 3001);
const BASE = (env.RP_URL ?? `http://127.0.0.1:${PORT}`).replace(/\/$/, '');
const ISSUER = env.OP_ISSUER ?? 'http://127.0.0.1:3000';
const CLIENT_ID = env.RP_CLIENT_ID ?? 'demo-rp';
const CLIENT_SECRET = env.RP_CLIENT_SECRET ?? 'demo-rp-secret';
const REDIRECT_URI = `${BASE}/callback`;
const COOKIE = 'rp_session';
// Sign-ins under way and people signed in, by session cookie; both kept a short while.
const SESSION_MS = 30 * 60 * 1000;
const sessions = new Map();

let configuration = null;
async function discovered() {
  // Found on first use (and again after a failure), so the RP may start before the OP.
  configuration ??= await client.discovery(new URL(ISSUER), CLIENT_ID, CLIENT_SECRET, undefined, {
    // The demo runs on loopback over plain HTTP; a real deployment uses https only.
    execute: new URL(ISSUER).protocol === 'http:' ? [client.allowInsecureRequests] : [],
  });
  return configuration;
}

function session(req) {
  const cookie = (req.headers.cookie ?? '')
    .split(';')
    .map((part) => part.trim().split('='))
    .find(([name]) => name === COOKIE);
  const entry = cookie && sessions.get(cookie[1]);
  return entry && entry.expiresAt > Date.now() ? { id: cookie[1], ...entry } : null;
}

function newSession(res, data) {
  for (const [id, entry] of sessions) {
    if (entry.expiresAt <= Date.now()) {
      sessions.delete(id);
    }
  }
  const id = randomBytes(24).toString('base64url');
  sessions.set(id, { ...data, expiresAt: Date.now() + SESSION_MS });
  res.setHeader('Set-Cookie', `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax`);
}

function home(req, res) {
  const signedIn = session(req)?.claims;
  const body = signedIn
    ? `<h1>Signed in</h1>
<dl>
<dt>Subject (<code>sub</code>)</dt><dd id="sub">${escapeHtml(signedIn.sub)}</dd>
<dt>How (<code>amr</code>)</dt><dd id="amr">${escapeHtml((signedIn.amr ?? []).join(' '))}</dd>
<dt>Class (<code>acr</code>)</dt><dd id="acr">${escapeHtml(signedIn.acr ?? '')}</dd>
</dl>
<h2>The ID token's claims</h2>
<pre id="claims">${escapeHtml(JSON.stringify(signedIn, null, 2))}</pre>
<form method="post" action="/logout"><p><button type="submit" class="secondary">Sign out</button></p></form>`
    : `<h1>Demo relying party</h1>
<p>Not signed in.</p>
<p><a class="button" href="/login">Sign in</a></p>`;
  sendPage(res, 200, page('Demo relying party', body));
}

async function login(res) {
  const config = await discovered();
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  newSession(res, { verifier, state, nonce });
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  res.writeHead(303, { Location: url.href });
  res.end();
}

async function callback(req, res) {
  const pending = session(req);
  if (!pending?.verifier) {
    refused(res, 'no sign-in under way in this browser');
    return;
  }
  sessions.delete(pending.id);
  try {
    const tokens = await client.authorizationCodeGrant(await discovered(), new URL(req.url, BASE), {
      pkceCodeVerifier: pending.verifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    newSession(res, { claims: tokens.claims() });
    res.writeHead(303, { Location: '/' });
    res.end();
  } catch (error) {
    // An OAuth error from the OP (access_denied when the second factor was not given) or
    // a response that failed openid-client's checks.
    refused(res, error.error ?? error.code ?? 'invalid response', error.error_description ?? error.message);
  }
}

function refused(res, code, description = '') {
  const body = `<h1>Sign-in refused</h1>
<p>Error: <code id="error">${escapeHtml(code)}</code></p>
${description ? `<p id="error-description">${escapeHtml(description)}</p>` : ''}
<p><a class="button" href="/">Back</a></p>`;
  sendPage(res, 403, page('Sign-in refused', body));
}

createServer(async (req, res) => {
  try {
    const { pathname } = new URL(req.url ?? '/', BASE);
    if (req.method === 'GET' && pathname === '/') {
      home(req, res);
    } else if (req.method === 'GET' && pathname === '/login') {
      await login(res);
    } else if (req.method === 'GET' && pathname === '/callback') {
      await callback(req, res);
    } else if (req.method === 'POST' && pathname === '/logout') {
      await readForm(req);
      const current = session(req);
      if (current) {
        sessions.delete(current.id);
      }
      res.writeHead(303, { Location: '/' });
      res.end();
    } else if (pathname === '/example.css') {
      sendStylesheet(res);
    } else {
      sendPage(res, 404, page('Not found', '<h1>Not found</h1>'));
    }
  } catch (error) {
    console.error(error);
    configuration = null;
    if (!res.headersSent) {
      sendPage(res, 500, page('Something went wrong', '<h1>Something went wrong</h1><p>Try again.</p>'));
    } else {
      res.end();
    }
  }
}).listen(PORT, HOST, () => {
  console.log(`Relying party ${BASE} (OpenID provider ${ISSUER})`);
});

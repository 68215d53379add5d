// An OpenID provider in front of assent: it checks a password itself, then asks assent
// for a second factor through the Adapter API, sends the browser to assent's hosted page,
// and, when the browser comes back, picks up assent's result (once) and issues ID tokens
// whose `amr` and `acr` say what assent saw. The pattern for wiring assent into any IdP.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import Provider from 'oidc-provider';

import { escapeHtml, page, readForm, sendPage, sendStylesheet } from './html.mjs';
import { checkPassword, loadUsers } from './users.mjs';

const env = process.env;
const HOST = env.OP_HOST ?? '127.0.0.1';
const PORT = Number(env.OP_PORT ?? 3000);
const ISSUER = (env.OP_ISSUER ?? `http://127.0.0.1:${PORT}`).replace(/\/$/, '');
// Where the OP calls the Adapter API, and where browsers reach assent's pages.
const ASSENT_URL = (env.ASSENT_URL ?? 'http://127.0.0.1:9031').replace(/\/$/, '');
const ASSENT_PUBLIC_URL = (env.ASSENT_PUBLIC_URL ?? ASSENT_URL).replace(/\/$/, '');
const ASSENT_AUTHORIZATION = `Basic ${Buffer.from(
  `${env.ASSENT_CLIENT_ID ?? 'demo-federation'}:${env.ASSENT_CLIENT_SECRET ?? 'demo-federation-secret'}`,
).toString('base64')}`;
const RP_REDIRECT_URI = env.RP_REDIRECT_URI ?? 'http://127.0.0.1:3001/callback';
const USERS_FILE = env.USERS_FILE ?? fileURLToPath(new URL('./users.json', import.meta.url));

const users = await loadUsers(USERS_FILE);

// Signing and cookie keys are made at start: tokens and sessions do not outlive the
// process (a real deployment loads them from its secret store).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: randomBytes(8).toString('hex'),
  use: 'sig',
  alg: 'RS256',
};

const provider = new Provider(ISSUER, {
  clients: [
    {
      client_id: env.RP_CLIENT_ID ?? 'demo-rp',
      client_secret: env.RP_CLIENT_SECRET ?? 'demo-rp-secret',
      client_name: env.RP_CLIENT_NAME ?? 'Demo relying party',
      redirect_uris: [RP_REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: [env.OP_COOKIE_KEY ?? randomBytes(32).toString('base64url')] },
  // How the person signed in goes in every ID token (the `openid` scope), not only when a
  // relying party asks for it by name.
  claims: {
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    profile: ['name'],
    email: ['email'],
    sid: null,
    iss: null,
  },
  // assent's classes: a push approved with a device key, or a one-time passcode.
  acrValues: ['urn:assent:acr:mobile-push', 'urn:assent:acr:otp'],
  pkce: { required: () => true },
  // Seconds. A sign-in session lasts a working day; tokens are short.
  ttl: { Session: 8 * 3600, Grant: 8 * 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    if (!Object.hasOwn(users, id)) {
      return undefined;
    }
    const user = users[id];
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: user.name, email: user.email };
      },
    };
  },
});

// The flow each interaction waits for: interaction uid -> { flowId, accountId, expiresAt }.
// In this one process's memory, like the provider's own default store.
const waiting = new Map();

function forget(now = Date.now()) {
  for (const [uid, entry] of waiting) {
    if (entry.expiresAt <= now) {
      waiting.delete(uid);
    }
  }
}

// The origins the login page's forms may end up at after their redirects.
const FORM_TARGETS = [new URL(ASSENT_PUBLIC_URL).origin, new URL(RP_REDIRECT_URI).origin];

function loginPage(res, status, details, { username = '', error = null } = {}) {
  const client = details.params.client_id;
  const described = error ? ' aria-describedby="login-error" aria-invalid="true"' : '';
  const body = `<h1>Sign in</h1>
<p>to continue to ${escapeHtml(clientName(client))}</p>
${error ? `<p id="login-error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(details.uid)}/login">
<p><label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required value="${escapeHtml(username)}"${described}></p>
<p><label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${described}></p>
<p><button type="submit">Sign in</button></p>
</form>
<form method="post" action="/interaction/${escapeHtml(details.uid)}/abort">
<p><button type="submit" class="secondary">Cancel</button></p>
</form>`;
  sendPage(res, status, page('Sign in', body), FORM_TARGETS);
}

function messagePage(res, status, heading, text, link = null) {
  const body = `<h1>${escapeHtml(heading)}</h1>
<p>${escapeHtml(text)}</p>
${link ? `<p><a class="button" href="${escapeHtml(link.href)}">${escapeHtml(link.text)}</a></p>` : ''}`;
  sendPage(res, status, page(heading, body));
}

const clientNames = new Map();
function clientName(clientId) {
  return clientNames.get(clientId) ?? clientId;
}

/** The browser's address as assent records it (IPv4 without its IPv6 mapping). */
function clientIp(req) {
  return (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '') || undefined;
}

async function assent(method, path, body) {
  const response = await fetch(`${ASSENT_URL}${path}`, {
    method,
    headers: {
      Authorization: ASSENT_AUTHORIZATION,
      Accept: 'application/json',
      ...(body ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // A non-JSON answer (a proxy's error page) is reported by status alone.
  }
  return { status: response.status, json };
}

/** The ID token's `amr`: the password checked here, then what assent's result names. */
export function amrOf(result) {
  return [...new Set(['pwd', ...(Array.isArray(result.amr) ? result.amr : [])])];
}

async function login(req, res, details) {
  const form = await readForm(req);
  const username = (form.get('username') ?? '').trim();
  const accountId = await checkPassword(users, username, form.get('password') ?? '');
  if (!accountId) {
    loginPage(res, 401, details, { username, error: 'The username or password is incorrect.' });
    return;
  }
  const client = await provider.Client.find(details.params.client_id);
  const started = await assent('POST', '/adapter/v1/flows', {
    kind: 'oob',
    user: { id: accountId, username: accountId },
    application: { name: client?.clientName ?? details.params.client_id, id: details.params.client_id },
    clientIp: clientIp(req),
    returnUrl: `${ISSUER}/interaction/${details.uid}/resume`,
  });
  if (started.status !== 201 || typeof started.json?.flowId !== 'string') {
    console.error(`assent refused the flow start: ${started.status} ${started.json?.title ?? ''}`);
    messagePage(res, 502, 'Sign-in unavailable', 'The second factor service did not answer. Try again later.');
    return;
  }
  forget();
  waiting.set(details.uid, {
    flowId: started.json.flowId,
    accountId,
    expiresAt: details.exp * 1000,
  });
  res.writeHead(303, { Location: `${ASSENT_PUBLIC_URL}/flows/${encodeURIComponent(started.json.flowId)}` });
  res.end();
}

async function resume(req, res, details) {
  const entry = waiting.get(details.uid);
  if (!entry) {
    messagePage(res, 400, 'Nothing to resume', 'This sign-in is not waiting for a second factor. Start again from the application.');
    return;
  }
  // Taken before the pick-up, so that a second request for this page (a double click, a
  // reload) finds nothing rather than racing this one to finish the interaction.
  waiting.delete(details.uid);
  const picked = await assent('GET', `/adapter/v1/flows/${encodeURIComponent(entry.flowId)}/result`);
  if (picked.status === 409) {
    waiting.set(details.uid, entry);
    messagePage(res, 409, 'Not finished yet', 'Finish the second step of your sign-in first.', {
      href: `${ASSENT_PUBLIC_URL}/flows/${encodeURIComponent(entry.flowId)}`,
      text: 'Back to the second step',
    });
    return;
  }
  if (picked.status !== 200) {
    // 404: picked up already or expired; anything else: assent could not say.
    console.error(`assent result for flow ${entry.flowId}: ${picked.status}`);
    await finish(req, res, denied('The second factor could not be confirmed.'));
    return;
  }
  const result = picked.json;
  const completed = result.status === 'COMPLETED' || result.status === 'RESUME';
  if (!completed || result.flowId !== entry.flowId || result.subject !== entry.accountId) {
    await finish(req, res, denied(`The second factor was not given (${result.status}).`));
    return;
  }
  const grant = new provider.Grant({ accountId: entry.accountId, clientId: details.params.client_id });
  // A first-party client: the scopes it asks for are granted without a consent screen.
  grant.addOIDCScope(String(details.params.scope ?? 'openid'));
  const grantId = await grant.save();
  await finish(req, res, {
    login: {
      accountId: entry.accountId,
      amr: amrOf(result),
      ...(result.acr ? { acr: result.acr } : {}),
      remember: false,
    },
    consent: { grantId },
  });
}

function denied(description) {
  return { error: 'access_denied', error_description: description };
}

function finish(req, res, result) {
  return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

async function interaction(req, res, uid, step) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch {
    messagePage(res, 400, 'Sign-in expired', 'This sign-in has expired or belongs to another browser. Start again from the application.');
    return;
  }
  if (details.uid !== uid) {
    messagePage(res, 400, 'Sign-in expired', 'This sign-in belongs to another window. Start again from the application.');
    return;
  }
  if (!clientNames.has(details.params.client_id)) {
    const client = await provider.Client.find(details.params.client_id);
    clientNames.set(details.params.client_id, client?.clientName ?? details.params.client_id);
  }
  const prompt = details.prompt.name;
  if (req.method === 'GET' && step === '' && prompt === 'login') {
    loginPage(res, 200, details);
  } else if (req.method === 'POST' && step === 'login' && prompt === 'login') {
    await login(req, res, details);
  } else if (req.method === 'GET' && step === 'resume') {
    await resume(req, res, details);
  } else if (req.method === 'POST' && step === 'abort') {
    waiting.delete(details.uid);
    await finish(req, res, denied('The person cancelled the sign-in.'));
  } else {
    messagePage(res, 405, 'Not here', 'This page does not take that request.');
  }
}

const providerCallback = provider.callback();
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|resume|abort))?$/;

createServer(async (req, res) => {
  try {
    const { pathname } = new URL(req.url ?? '/', ISSUER);
    const matched = INTERACTION.exec(pathname);
    if (matched) {
      await interaction(req, res, matched[1], matched[2] ?? '');
    } else if (pathname === '/example.css') {
      sendStylesheet(res);
    } else {
      providerCallback(req, res);
    }
  } catch (error) {
    console.error(error);
    if (!res.headersSent) {
      messagePage(res, 500, 'Something went wrong', 'Start again from the application.');
    } else {
      res.end();
    }
  }
}).listen(PORT, HOST, () => {
  console.log(`OpenID provider ${ISSUER} (assent at ${ASSENT_URL})`);
});

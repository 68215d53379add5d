// CIBA poll-mode interop client using openid-client v6.
// Env: ISSUER, CLIENT_ID, CLIENT_SECRET, LOGIN_HINT, BINDING_MESSAGE (optional),
//      SCOPE (default "openid profile"), CLIENT_AUTH=basic|post (default basic),
//      VERIFY_SIGNATURE=0 to skip JWKS signature verification of the ID token (default: verify).
import * as client from 'openid-client'

function env(name, fallback) {
  const v = process.env[name]
  if (v === undefined || v === '') {
    if (fallback !== undefined) return fallback
    throw new Error(`missing required env var ${name}`)
  }
  return v
}

function describe(err) {
  const out = { name: err?.name, message: err?.message, code: err?.code }
  if (err?.error) out.error = err.error // ResponseBodyError: OAuth error code
  if (err?.error_description) out.error_description = err.error_description
  if (err?.status) out.status = err.status
  if (err?.cause !== undefined) {
    try { out.cause = JSON.parse(JSON.stringify(err.cause)) } catch { out.cause = String(err.cause) }
  }
  return out
}

async function main() {
  const issuer = new URL(env('ISSUER'))
  const clientId = env('CLIENT_ID')
  const clientSecret = env('CLIENT_SECRET')
  const loginHint = env('LOGIN_HINT')
  const bindingMessage = process.env.BINDING_MESSAGE
  const scope = env('SCOPE', 'openid profile')
  const authMethod = env('CLIENT_AUTH', 'basic')
  const verifySig = env('VERIFY_SIGNATURE', '1') !== '0'

  const clientAuth =
    authMethod === 'post'
      ? client.ClientSecretPost(clientSecret)
      : authMethod === 'basic'
        ? client.ClientSecretBasic(clientSecret)
        : (() => { throw new Error(`unsupported CLIENT_AUTH ${authMethod}`) })()

  const execute = [client.allowInsecureRequests] // also allows http for the discovery request itself
  if (verifySig) execute.push(client.enableNonRepudiationChecks) // verify id_token JWS via jwks_uri

  // GET {issuer}/.well-known/openid-configuration, requires metadata "issuer" to match ISSUER
  const config = await client.discovery(issuer, clientId, { client_secret: clientSecret }, clientAuth, { execute })

  const params = { scope, login_hint: loginHint }
  if (bindingMessage) params.binding_message = bindingMessage

  const cibaResponse = await client.initiateBackchannelAuthentication(config, params)
  process.stdout.write(JSON.stringify({
    auth_req_id: cibaResponse.auth_req_id,
    expires_in: cibaResponse.expires_in,
    interval: cibaResponse.interval ?? null,
  }) + '\n')

  // Waits `interval` (default 5s) before each token request; handles authorization_pending and
  // slow_down (+5s); gives up after expires_in seconds (error code OAUTH_TIMEOUT).
  const tokens = await client.pollBackchannelAuthenticationGrant(config, cibaResponse)

  const claims = tokens.claims() // validated ID token claims, undefined if no id_token returned
  process.stdout.write(JSON.stringify({
    sub: claims?.sub ?? null,
    id_token_claims: claims ?? null,
    token_type: tokens.token_type, // lower-cased by openid-client ("bearer" / "dpop")
    has_access_token: typeof tokens.access_token === 'string' && tokens.access_token.length > 0,
    has_id_token: typeof tokens.id_token === 'string',
    expires_in: tokens.expires_in ?? null,
    scope: tokens.scope ?? null,
  }) + '\n')
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write('ciba-poll error: ' + JSON.stringify(describe(err)) + '\n')
    if (err?.stack) process.stderr.write(err.stack + '\n')
    process.exit(1)
  },
)

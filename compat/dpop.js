// The DPoP check of every cell (RFC 9449): accessToken({ dpop: { key } }) through the cell's
// way of sending a request, against compat/servers.js's DPoP token endpoint and API, which
// verify every proof and each want their own nonce. Once per alg, with a fresh key:
//
//   GET with a query → token request: 400 use_dpop_nonce, then 200 token_type DPoP;
//          API: 401 use_dpop_nonce, then 200 (the token kept: no renewal); htu without query
//   POST → 200 at once: the nonce remembered, a fresh proof (jti), the body sent
import { generateKeyPairSync } from 'node:crypto'
import { accessToken, clientCredentials } from 'undici-access-token'

const algs = {
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  EdDSA: () => generateKeyPairSync('ed25519').privateKey,
}

function expect(condition, message) {
  if (!condition) throw new Error(message)
}

const show = (value) => JSON.stringify(value)

/**
 * @param {object} options
 * @param {Awaited<ReturnType<typeof import('./servers.js').startDpopServers>>} options.dpop
 * @param {(auth: import('undici').Dispatcher.DispatcherComposeInterceptor) => unknown} options.dispatcher
 *   a dispatcher carrying `auth`, as the cell's path makes one
 * @param {(dispatcher: unknown, url: string, options?: { method?: string, body?: string }) => Promise<{ status: number, text: string }>} options.send
 * @param {string} [options.origin]  where to send (the API's origin unless given, e.g. by name)
 */
export async function dpopCheck({
  dpop,
  dispatcher: dispatcherOf,
  send,
  origin = dpop.api.origin,
}) {
  // The token request goes through global fetch (the default), as in the other checks.
  const fetchToken = clientCredentials({
    tokenUrl: `${dpop.tokenEndpoint.origin}/token`,
    clientId: 'compat-dpop',
    clientSecret: 'compat-dpop-secret',
  })
  for (const [alg, newKey] of Object.entries(algs)) {
    dpop.reset()
    const auth = accessToken({ origins: origin, fetchToken, dpop: { key: newKey() } })
    const dispatcher = dispatcherOf(auth)
    const get = await send(dispatcher, `${origin}/dpop/echo?alg=${alg}`)
    expect(get.status === 200, `${alg} GET: ${get.status} ${get.text}`)
    const post = await send(dispatcher, `${origin}/dpop/echo`, { method: 'POST', body: 'hello' })
    expect(post.status === 200, `${alg} POST: ${post.status} ${post.text}`)
    const echoed = JSON.parse(post.text)
    expect(echoed.body === 'hello' && echoed.alg === alg, `${alg} POST echo ${post.text}`)
    const asSaw = dpop.answers.map((answer) => answer.error ?? answer.status)
    expect(
      show(asSaw) === show(['use_dpop_nonce', 200]),
      `${alg} token endpoint answered ${show(asSaw)} (${show(dpop.as.refusals)})`,
    )
    const apiSaw = dpop.api.hits.map((hit) => hit.status)
    expect(
      show(apiSaw) === show([401, 200, 200]),
      `${alg} API answered ${show(apiSaw)} (${show(dpop.rs.refusals)})`,
    )
    expect(
      show(dpop.rs.refusals) === show(['use_dpop_nonce: no nonce']),
      `${alg} API refusals ${show(dpop.rs.refusals)}`,
    )
    const { issued } = dpop.tokenEndpoint
    expect(issued.length === 1, `${alg}: ${issued.length} tokens issued, not 1`)
    const [token] = issued
    for (const hit of dpop.api.hits) {
      expect(
        show(hit.authorizations) === show([`DPoP ${token}`]),
        `${alg} ${hit.method} ${hit.url}: authorization ${show(hit.authorizations)}`,
      )
    }
  }
}

// @ts-check
// One loopback origin that is both a token endpoint (at /token) and a protected API (every
// other path): for the tests that check that the interceptor never decorates its own token
// request, even when the token endpoint sits on an origin it decorates.
import { createApi, createTokenEndpoint, startServer } from './servers.js'

/**
 * @typedef {object} SharedOrigin
 * @property {string} origin  `http://127.0.0.1:<port>`
 * @property {string} tokenUrl  `<origin>/token`
 * @property {import('./servers.js').TokenEndpointState} tokenEndpoint  what `/token` received
 * @property {import('./servers.js').ApiState} api  what every other path received
 * @property {() => Promise<void>} close
 */

/**
 * Starts a server answering `/token` as `createTokenEndpoint(options.tokenEndpoint)` and
 * everything else as `createApi(options.api)`.
 * @param {{
 *   tokenEndpoint?: import('./servers.js').TokenEndpointOptions,
 *   api?: import('./servers.js').ApiOptions,
 * }} [options]
 * @param {import('./servers.js').ServerOptions} [serverOptions]
 * @returns {Promise<SharedOrigin>}
 */
export async function startSharedOrigin(options = {}, serverOptions = {}) {
  const tokenEndpoint = createTokenEndpoint(options.tokenEndpoint)
  const api = createApi(options.api)
  const server = await startServer(
    (req, res, body) => (req.url === '/token' ? tokenEndpoint : api).handle(req, res, body),
    serverOptions,
  )
  return {
    origin: server.origin,
    tokenUrl: `${server.origin}/token`,
    tokenEndpoint,
    api,
    close: () => server.close(),
  }
}

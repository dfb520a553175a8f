// Loopback servers for the compatibility cells: a token endpoint, a token-protected API and
// another origin that must never see a token. The tests' own servers (tests/support/servers.js:
// node:http on 127.0.0.1:0, Node built-ins only), with the routes the cells need.
import { gzipSync } from 'node:zlib'
import { startApi, startTokenEndpoint } from '../tests/support/servers.js'

const challenge = { 'www-authenticate': 'Bearer error="invalid_token"' }

/** The token of a hit with exactly one `authorization` header, a Bearer one; else ''. */
function tokenOf(hit) {
  const [authorization] = hit.authorizations
  return hit.authorizations.length === 1 && authorization.startsWith('Bearer ')
    ? authorization.slice(7)
    : ''
}

/**
 * The cell's servers. Every hit records every `authorization` value it was sent
 * (`hit.authorizations`, from the raw headers, so duplicates show).
 *
 * - `tokenEndpoint` issues `tok-1`, `tok-2`, … (each valid at the API at once); `hold()` makes
 *   it wait before answering until `release()`.
 * - `api` first checks for exactly one `authorization` header with a valid token (else 401 with
 *   an `invalid_token` challenge), then:
 *     /echo              200, JSON of what it got
 *     /flaky/<id>        503 the first time an id gets this far, then 200
 *     /redirect-same     302 to /echo
 *     /redirect-foreign  302 to <other origin>/landing
 *     /cache/public      200, cache-control: public, max-age=60
 *     /cache/private     200, cache-control: max-age=60 (no `public`)
 *     /gzip              200, gzip-encoded body (its 401 is gzip-encoded too)
 *   `api.revoke(token)` makes a token invalid.
 * - `other` answers 200 to everything.
 *
 * `reset()` forgets every hit and token request (tokens stay valid) and releases a hold.
 */
export async function startServers() {
  const valid = new Set(['static'])
  const flaky = new Set()
  let issued = 0
  const tokenEndpoint = await startTokenEndpoint({
    respond: () => {
      const token = `tok-${++issued}`
      valid.add(token)
      return { body: { access_token: token, token_type: 'bearer', expires_in: 3600 } }
    },
  })
  const other = await startApi({
    accept: () => true,
    respond: () => ({ headers: { 'content-type': 'text/plain' }, body: 'elsewhere' }),
  })
  const api = await startApi({
    accept: (_, hit) => valid.has(tokenOf(hit)),
    respond(hit, accepted) {
      const { pathname } = new URL(hit.url, 'http://x')
      const answer = route(hit, accepted, pathname)
      if (pathname !== '/gzip') return answer
      return {
        ...answer,
        headers: { ...answer.headers, 'content-encoding': 'gzip' },
        body: gzipSync(answer.body),
      }
    },
  })

  function route(hit, accepted, pathname) {
    if (!accepted) return { status: 401, headers: challenge, body: 'unauthorized' }
    if (pathname.startsWith('/flaky/') && !flaky.has(pathname)) {
      flaky.add(pathname)
      return { status: 503, headers: { 'retry-after': '0' }, body: 'try again' }
    }
    if (pathname === '/redirect-same')
      return { status: 302, headers: { location: '/echo' }, body: '' }
    if (pathname === '/redirect-foreign') {
      return { status: 302, headers: { location: `${other.origin}/landing` }, body: '' }
    }
    if (pathname === '/cache/public') {
      const headers = { 'cache-control': 'public, max-age=60' }
      return { headers, body: `public ${api.hits.length}` }
    }
    if (pathname === '/cache/private') {
      return { headers: { 'cache-control': 'max-age=60' }, body: `private ${api.hits.length}` }
    }
    if (pathname === '/gzip') {
      return { headers: { 'content-type': 'text/plain' }, body: 'hello, compressed' }
    }
    return { body: { method: hit.method, body: hit.body, token: tokenOf(hit) } }
  }

  api.revoke = (token) => valid.delete(token)
  return {
    api,
    other,
    tokenEndpoint,
    reset() {
      api.reset()
      flaky.clear()
      other.reset()
      tokenEndpoint.reset()
    },
    close: () => Promise.all([api.close(), other.close(), tokenEndpoint.close()]),
  }
}

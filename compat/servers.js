// Loopback servers for the compatibility cells: a token endpoint, a token-protected API and
// another origin that must never see a token, and a DPoP (RFC 9449) pair of them. The tests'
// own servers (tests/support/servers.js: node:http on 127.0.0.1:0, Node built-ins only), with
// the routes the cells need; DPoP proofs are checked by tests/support/dpop.js (node:crypto).
import { gzipSync } from 'node:zlib'
import { htuOf, ProofChecker } from '../tests/support/dpop.js'
import { rawHeaderValues, startApi, startTokenEndpoint } from '../tests/support/servers.js'

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
 * - `dpop`: see startDpopServers().
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
  const dpop = await startDpopServers()
  return {
    api,
    other,
    tokenEndpoint,
    dpop,
    reset() {
      api.reset()
      flaky.clear()
      other.reset()
      tokenEndpoint.reset()
      dpop.reset()
    },
    close: () => Promise.all([api.close(), other.close(), tokenEndpoint.close(), dpop.close()]),
  }
}

/**
 * DPoP (RFC 9449), both servers requiring a proof and their own nonce:
 *
 * - `tokenEndpoint` checks the token request's proof (htm POST, htu its URL, no ath): without
 *   its current nonce, 400 `use_dpop_nonce` and a `DPoP-Nonce` (§8); then `token_type: DPoP`,
 *   the token bound to the proof key's thumbprint (`cnf.jkt`, §6).
 * - `api` takes only `Authorization: DPoP <token>` with one proof that verifies (signature by
 *   node:crypto, htm, htu from the Host header and path, iat, a jti never seen, ath of that
 *   token) by the key the token is bound to; without its current nonce, 401 with
 *   `WWW-Authenticate: DPoP error="use_dpop_nonce"` and a `DPoP-Nonce` (§9). Why proofs were
 *   refused is in `as.refusals` and `rs.refusals`.
 *
 * `reset()` forgets requests, hits and outcomes and rotates both nonces, so that every check
 * pays each round trip once; jtis are remembered for the whole cell (a repeat is a replay).
 */
export async function startDpopServers() {
  const as = new ProofChecker({ label: 'as' })
  const rs = new ProofChecker({ label: 'rs' })
  /** token → the thumbprint of the key it is bound to */
  const bound = new Map()
  /** The token endpoint's answers, in order: status and error. */
  const answers = []
  let issued = 0
  const tokenEndpoint = await startTokenEndpoint({
    respond(n) {
      const request = tokenEndpoint.requests[n - 1]
      const proof = request.headers.dpop
      const outcome = as.check(proof === undefined ? [] : [proof], {
        htm: request.method,
        htu: `http://${request.headers.host}${htuOf(request.url)}`,
      })
      if (!outcome.ok) {
        answers.push({ status: 400, error: outcome.error })
        const nonce = outcome.error === 'use_dpop_nonce' ? as.nonce : undefined
        return {
          status: 400,
          headers: { 'dpop-nonce': nonce, 'cache-control': 'no-store' },
          body: { error: outcome.error, error_description: outcome.reason },
        }
      }
      answers.push({ status: 200, error: undefined })
      const token = `dpop-tok-${++issued}`
      bound.set(token, outcome.thumbprint)
      return { body: { access_token: token, token_type: 'DPoP', expires_in: 3600 } }
    },
  })
  const api = await startApi({
    accept: () => true,
    respond(hit) {
      const [authorization, ...more] = hit.authorizations
      const token = authorization?.startsWith('DPoP ') ? authorization.slice(5) : undefined
      /** @param {string} error */
      const refuse = (error) => {
        const nonce = error === 'use_dpop_nonce' ? rs.nonce : undefined
        return {
          status: 401,
          headers: {
            'www-authenticate': `DPoP error="${error}", algs="ES256 EdDSA"`,
            'dpop-nonce': nonce,
          },
          body: error,
        }
      }
      if (token === undefined || more.length > 0) return refuse('invalid_token')
      const outcome = rs.check(rawHeaderValues(hit.rawHeaders, 'dpop'), {
        htm: hit.method,
        htu: `http://${hit.headers.host}${htuOf(hit.url)}`,
        accessToken: token,
      })
      if (!outcome.ok) return refuse(outcome.error)
      // RFC 9449 §7.1: the token must be bound to the key that signed the proof.
      if (bound.get(token) !== outcome.thumbprint) return refuse('invalid_token')
      return { body: { method: hit.method, body: hit.body, token, alg: outcome.alg } }
    },
  })
  return {
    tokenEndpoint,
    api,
    as,
    rs,
    answers,
    reset() {
      tokenEndpoint.reset()
      api.reset()
      answers.length = 0
      as.refusals.length = 0
      rs.refusals.length = 0
      as.rotateNonce()
      rs.rotateNonce()
    },
    close: () => Promise.all([tokenEndpoint.close(), api.close()]),
  }
}

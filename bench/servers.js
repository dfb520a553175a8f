// @ts-check
// The benchmark's loopback servers, in a process of their own (bench/run.js forks this file),
// so that the client process measures client work only:
// - a token endpoint (tests/support/servers.js): answers any POST with a fresh bearer token
//   after `tokenDelay` ms;
// - a protected API (tests/support/servers.js, keeping no hits): 200 for a token it issued that
//   has not expired, else 401 with `WWW-Authenticate: Bearer error="invalid_token"`;
// - a minimal HTTP/1.1 responder (node:net) for the hot path: a canned 200 for every request
//   head it reads, no parsing beyond finding the end of the head, so the client is the bottleneck.
// Controlled over the fork's IPC channel: `configure`, `stats`. Exits when the parent goes away.
import { once } from 'node:events'
import { createServer as createNetServer } from 'node:net'
import { sleep } from '../tests/support/async.js'
import { startApi, startTokenEndpoint } from '../tests/support/servers.js'
import { serve } from './util.js'

const state = {
  /** Token lifetime, seconds. */
  lifetime: 3600,
  /** Token endpoint latency, ms. */
  tokenDelay: 0,
  /** @type {Map<string, number>} token → epoch ms at which it expires */
  valid: new Map(),
  apiHits: 0,
  /** API hits without a token this server issued */
  unauthenticated: 0,
  /** API hits with an expired token */
  expired: 0,
}

/** Both servers keep connections as long as the clients do. */
const http = { keepAliveTimeout: 60_000, headersTimeout: 65_000 }

const idp = await startTokenEndpoint({
  ...http,
  async respond(n) {
    // The token is made when the answer goes out, so that its expiry here is what the client sees.
    if (state.tokenDelay > 0) await sleep(state.tokenDelay)
    const token = `bench-${n}-${Math.random().toString(36).slice(2, 10)}`
    state.valid.set(token, Date.now() + state.lifetime * 1000)
    return {
      headers: { 'cache-control': 'no-store' },
      body: { access_token: token, token_type: 'Bearer', expires_in: state.lifetime },
    }
  },
})

const api = await startApi({
  ...http,
  record: false, // millions of hits: count them, keep none
  accept(authorization = '') {
    state.apiHits++
    const token = authorization.startsWith('Bearer ') ? authorization.slice(7) : ''
    const expiresAt = state.valid.get(token)
    if (expiresAt === undefined) state.unauthenticated++
    else if (Date.now() >= expiresAt) state.expired++
    else return true
    return false
  },
  respond: (_, accepted) =>
    accepted
      ? { headers: { 'content-type': 'text/plain' }, body: 'ok' }
      : { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' } },
})

const canned = Buffer.from(
  'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nkeep-alive: timeout=60\r\n\r\nok',
)
// Request heads without bodies (the hot path sends GETs): one response per "\r\n\r\n".
const fast = createNetServer((socket) => {
  socket.setNoDelay(true)
  let carry = ''
  socket.on('data', (chunk) => {
    const text = carry + chunk.toString('latin1')
    let count = 0
    let end = 0
    for (let at = text.indexOf('\r\n\r\n'); at !== -1; at = text.indexOf('\r\n\r\n', end)) {
      count++
      end = at + 4
    }
    carry = text.slice(Math.max(end, text.length - 3))
    if (count === 1) socket.write(canned)
    else if (count > 1) socket.write(Buffer.concat(Array.from({ length: count }, () => canned)))
  })
  socket.on('error', () => {})
})

fast.listen(0, '127.0.0.1')
await once(fast, 'listening')
const { port } = /** @type {import('node:net').AddressInfo} */ (fast.address())

const origins = { idp: idp.origin, api: api.origin, fast: `http://127.0.0.1:${port}` }

serve(
  {
    configure(/** @type {{ lifetime?: number, tokenDelay?: number }} */ options) {
      state.lifetime = options.lifetime ?? 3600
      state.tokenDelay = options.tokenDelay ?? 0
      idp.reset()
      state.valid.clear()
      state.apiHits = 0
      state.unauthenticated = 0
      state.expired = 0
      return {}
    },
    stats: () => ({
      tokenRequests: idp.requests.length,
      tokenTimes: idp.requests.map((request) => request.receivedAt),
      apiHits: state.apiHits,
      unauthenticated: state.unauthenticated,
      expired: state.expired,
    }),
  },
  { origins },
)

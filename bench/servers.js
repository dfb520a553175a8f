// @ts-check
// The benchmark's loopback servers, in a process of their own (bench/run.js forks this file),
// so that the client process measures client work only:
// - a token endpoint (node:http): answers any POST with a fresh bearer token after `tokenDelay` ms;
// - a protected API (node:http): 200 for a token it issued that has not expired, else 401 with
//   `WWW-Authenticate: Bearer error="invalid_token"`;
// - a minimal HTTP/1.1 responder (node:net) for the hot path: a canned 200 for every request
//   head it reads, no parsing beyond finding the end of the head, so the client is the bottleneck.
// Controlled over the fork's IPC channel: `configure`, `stats`. Exits when the parent goes away.
import { once } from 'node:events'
import { createServer } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { serve } from './util.js'

const state = {
  /** Token lifetime, seconds. */
  lifetime: 3600,
  /** Token endpoint latency, ms. */
  tokenDelay: 0,
  issued: 0,
  tokenRequests: 0,
  /** @type {number[]} epoch ms at which each token request arrived */
  tokenTimes: [],
  /** @type {Map<string, number>} token → epoch ms at which it expires */
  valid: new Map(),
  apiHits: 0,
  /** API hits without a token this server issued */
  unauthenticated: 0,
  /** API hits with an expired token */
  expired: 0,
}

const idp = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    state.tokenRequests++
    state.tokenTimes.push(Date.now())
    const answer = () => {
      const token = `bench-${++state.issued}-${Math.random().toString(36).slice(2, 10)}`
      state.valid.set(token, Date.now() + state.lifetime * 1000)
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      res.end(
        JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: state.lifetime }),
      )
    }
    if (state.tokenDelay > 0) setTimeout(answer, state.tokenDelay)
    else answer()
  })
})

const api = createServer((req, res) => {
  req.resume()
  state.apiHits++
  const authorization = req.headers.authorization ?? ''
  const token = authorization.startsWith('Bearer ') ? authorization.slice(7) : ''
  const expiresAt = state.valid.get(token)
  if (expiresAt === undefined || Date.now() >= expiresAt) {
    if (expiresAt === undefined) state.unauthenticated++
    else state.expired++
    res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' })
    res.end()
    return
  }
  res.writeHead(200, { 'content-type': 'text/plain' })
  res.end('ok')
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

for (const server of [idp, api]) {
  server.keepAliveTimeout = 60_000
  server.headersTimeout = 65_000
}

/** @param {import('node:net').Server} server */
async function listen(server) {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = /** @type {import('node:net').AddressInfo} */ (server.address())
  return `http://127.0.0.1:${address.port}`
}

const origins = { idp: await listen(idp), api: await listen(api), fast: await listen(fast) }

serve(
  {
    configure(/** @type {{ lifetime?: number, tokenDelay?: number }} */ options) {
      state.lifetime = options.lifetime ?? 3600
      state.tokenDelay = options.tokenDelay ?? 0
      state.issued = 0
      state.tokenRequests = 0
      state.tokenTimes = []
      state.valid.clear()
      state.apiHits = 0
      state.unauthenticated = 0
      state.expired = 0
      return {}
    },
    stats: () => ({
      tokenRequests: state.tokenRequests,
      tokenTimes: state.tokenTimes,
      apiHits: state.apiHits,
      unauthenticated: state.unauthenticated,
      expired: state.expired,
    }),
  },
  { origins },
)

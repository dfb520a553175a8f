// Loopback servers for the compatibility cells: a token endpoint, a token-protected API and
// another origin that must never see a token. Plain node:http on 127.0.0.1:0.
import { once } from 'node:events'
import { createServer } from 'node:http'
import { gzipSync } from 'node:zlib'

/** Most time a held token response waits for release(), so nothing can hang. */
const maxHold = 5_000

async function listen(handle) {
  const server = createServer((req, res) => {
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString()))
    req.on('error', () => res.destroy())
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  return {
    server,
    port,
    origin: `http://127.0.0.1:${port}`,
    close() {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

/** Every value a header was sent with, from the raw headers (so duplicates show). */
function rawValues(req, name) {
  const values = []
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() === name) values.push(req.rawHeaders[i + 1])
  }
  return values
}

function hitOf(req, body) {
  return {
    method: req.method,
    url: req.url,
    authorization: rawValues(req, 'authorization'),
    apiToken: rawValues(req, 'x-api-token'),
    body,
  }
}

/**
 * A token endpoint issuing `tok-1`, `tok-2`, … (each valid at the API at once);
 * `hold()` makes it wait before answering until `release()`.
 */
export async function startTokenEndpoint(api) {
  let issued = 0
  let held
  const endpoint = await listen(async (_req, res) => {
    endpoint.requests++
    if (held) await held.promise
    const token = `tok-${++issued}`
    api.valid.add(token)
    endpoint.issued.push(token)
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ access_token: token, token_type: 'bearer', expires_in: 3600 }))
  })
  endpoint.requests = 0
  endpoint.issued = []
  endpoint.hold = () => {
    let release
    const promise = new Promise((resolve) => {
      release = resolve
    })
    const timer = setTimeout(release, maxHold)
    held = {
      promise,
      release() {
        clearTimeout(timer)
        held = undefined
        release()
      },
    }
  }
  endpoint.release = () => held?.release()
  endpoint.reset = () => {
    endpoint.release()
    endpoint.requests = 0
    endpoint.issued = []
  }
  return endpoint
}

/**
 * The protected API. Every route first checks for exactly one `authorization` header with a
 * valid token (else 401 with an `invalid_token` challenge), then:
 *   /echo              200, JSON of what it got
 *   /flaky/<id>        503 the first time an id gets this far, then 200
 *   /redirect-same     302 to /echo
 *   /redirect-foreign  302 to <other origin>/landing
 *   /cache/public      200, cache-control: public, max-age=60
 *   /cache/private     200, cache-control: max-age=60 (no `public`)
 *   /gzip              200, gzip-encoded body (its 401 is gzip-encoded too)
 */
export async function startApi() {
  const valid = new Set(['static'])
  const flaky = new Set()
  const api = await listen((req, res, body) => {
    const hit = hitOf(req, body)
    api.hits.push(hit)
    const url = new URL(req.url, 'http://x')
    const gzip = url.pathname === '/gzip'
    const send = (status, headers, text) => {
      if (gzip) {
        res.writeHead(status, { ...headers, 'content-encoding': 'gzip' })
        res.end(gzipSync(text))
      } else {
        res.writeHead(status, headers)
        res.end(text)
      }
    }
    const [auth] = hit.authorization
    const token = hit.authorization.length === 1 && auth.startsWith('Bearer ') ? auth.slice(7) : ''
    if (!valid.has(token)) {
      send(401, { 'www-authenticate': 'Bearer error="invalid_token"' }, 'unauthorized')
      return
    }
    if (url.pathname.startsWith('/flaky/') && !flaky.has(url.pathname)) {
      flaky.add(url.pathname)
      send(503, { 'retry-after': '0' }, 'try again')
      return
    }
    if (url.pathname === '/redirect-same') {
      send(302, { location: '/echo' }, '')
      return
    }
    if (url.pathname === '/redirect-foreign') {
      send(302, { location: `${api.otherOrigin}/landing` }, '')
      return
    }
    if (url.pathname === '/cache/public') {
      send(200, { 'cache-control': 'public, max-age=60' }, `public ${api.hits.length}`)
      return
    }
    if (url.pathname === '/cache/private') {
      send(200, { 'cache-control': 'max-age=60' }, `private ${api.hits.length}`)
      return
    }
    if (gzip) {
      send(200, { 'content-type': 'text/plain' }, 'hello, compressed')
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ method: hit.method, body, token }))
  })
  api.valid = valid
  api.flaky = flaky
  api.hits = []
  api.revoke = (token) => valid.delete(token)
  return api
}

/** Another origin: answers 200 to everything and records what it got. */
export async function startOther() {
  const other = await listen((req, res, body) => {
    other.hits.push(hitOf(req, body))
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('elsewhere')
  })
  other.hits = []
  return other
}

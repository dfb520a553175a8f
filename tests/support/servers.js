// @ts-check
// Loopback servers for the tests, faults/, bench/ and compat/: node:http on 127.0.0.1 with an
// ephemeral port. Node built-ins only: compat cells load this on Node 20–26.
//
// - startServer(handle): any handler, given the whole request body;
// - startTokenEndpoint(): a token endpoint issuing token-1, token-2, …;
// - startApi(): a protected API, 200 for an accepted Authorization, else 401 + invalid_token;
// - createTokenEndpoint() / createApi(): the same two without a server of their own, to serve
//   both from one origin (`startServer((req, res, body) => (req.url === '/token' ? idp : api)
//   .handle(req, res, body))`).
//
// Each records what it receives; `reset()` forgets it and restores the behaviour it started
// with (the options given). Every Authorization value, client_secret and token the servers see
// or issue is registered for the suite's secret scan (tests/setup/secret-scan.ts).
import { once } from 'node:events'
import { createServer } from 'node:http'
import { gate, sleep } from './async.js'
import { registerSecret } from './secret-registry.js'

/**
 * @typedef {import('node:http').IncomingMessage} IncomingMessage
 * @typedef {import('node:http').IncomingHttpHeaders} IncomingHttpHeaders
 * @typedef {import('node:http').ServerResponse} ServerResponse
 * @typedef {(req: IncomingMessage, res: ServerResponse, body: Buffer) => void | Promise<void>} Handle
 */

/**
 * @typedef {object} TestServer
 * @property {string} origin  `http://127.0.0.1:<port>`
 * @property {number} port
 * @property {import('node:http').Server} server
 * @property {() => void} reset  restores the behaviour the server started with
 * @property {() => Promise<void>} close  drops every connection and closes
 */

/**
 * @typedef {object} ServerOptions
 * @property {number} [keepAliveTimeout]  ms; 60 000 unless given
 * @property {number} [headersTimeout]  ms; Node's default unless given
 */

/**
 * A node:http server on 127.0.0.1 with an ephemeral port; `handle` gets each request with its
 * whole body. A handler that throws or rejects answers 500. Its `handle` may be replaced;
 * `reset()` puts the first one back.
 * @param {Handle} handle
 * @param {ServerOptions} [options]
 * @returns {Promise<TestServer & { handle: Handle }>}
 */
export async function startServer(handle, options = {}) {
  const server = createServer((req, res) => {
    registerSecret(req.headers.authorization)
    /** @type {Buffer[]} */
    const chunks = []
    req.on('data', (/** @type {Buffer} */ chunk) => chunks.push(chunk))
    req.on('error', () => res.destroy())
    req.on('end', () => {
      Promise.resolve()
        .then(() => result.handle(req, res, Buffer.concat(chunks)))
        .catch((/** @type {unknown} */ error) => {
          if (res.headersSent) {
            res.destroy()
            return
          }
          res.statusCode = 500
          res.end(String(error))
        })
    })
  })
  server.keepAliveTimeout = options.keepAliveTimeout ?? 60_000
  if (options.headersTimeout !== undefined) server.headersTimeout = options.headersTimeout
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address())
  const result = {
    origin: `http://127.0.0.1:${port}`,
    port,
    server,
    handle,
    reset() {
      result.handle = handle
    },
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(() => resolve(undefined)))
    },
  }
  return result
}

/**
 * What a server answers.
 * @typedef {object} Answer
 * @property {number} [status]  200 unless given
 * @property {Record<string, string | undefined>} [headers]  (those undefined are not sent)
 * @property {unknown} [body]  a string or bytes as they are, anything else as JSON
 * @property {number} [delay]  ms to wait before answering
 * @property {boolean} [stall]  send the head and `body`, then never end the response
 * @property {boolean} [destroy]  drop the connection instead of answering
 */

/**
 * Writes `answer`. A JSON body gets `content-type: application/json`, any other body
 * `contentType` if given, unless the answer's headers name one.
 * @param {ServerResponse} res
 * @param {Answer} answer
 * @param {string} [contentType]
 */
async function send(res, answer, contentType) {
  if (answer.delay) await sleep(answer.delay)
  if (answer.destroy) {
    res.socket?.destroy()
    return
  }
  const { body } = answer
  const bytes = typeof body === 'string' || body instanceof Uint8Array
  const payload = body === undefined || bytes ? body : JSON.stringify(body)
  const type = body === undefined ? undefined : bytes ? contentType : 'application/json'
  /** @type {Record<string, string>} */
  const headers = {}
  for (const [name, value] of Object.entries(answer.headers ?? {})) {
    if (value !== undefined) headers[name] = value
  }
  const named = Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')
  if (type !== undefined && !named) headers['content-type'] = type
  res.writeHead(answer.status ?? 200, headers)
  if (answer.stall) res.write(payload ?? '')
  else res.end(payload)
}

/**
 * @typedef {object} TokenRequest
 * @property {string} method
 * @property {string} url  path and query
 * @property {IncomingHttpHeaders} headers
 * @property {string} body
 * @property {number} receivedAt  epoch ms
 *
 * @typedef {(n: number) => Answer | Promise<Answer>} TokenRespond
 *   the answer to the n-th request (from 1; `requests[n - 1]` is that request)
 *
 * @typedef {object} TokenEndpointOptions
 * @property {number} [expiresIn]  the default answer's expires_in, seconds (3600)
 * @property {TokenRespond} [respond]  instead of the default answer
 *
 * @typedef {object} TokenEndpointState
 * @property {TokenRequest[]} requests  every token request received
 * @property {string[]} issued  every access_token handed out (in a 2xx JSON answer), in order
 * @property {TokenRespond} respond  the next answers; by default `token-<n>`, bearer, expires_in
 * @property {() => void} hold  answers wait (at most 5 s) from now until `release()`
 * @property {() => void} release
 * @property {() => void} reset  forgets requests and tokens, releases, restores `respond`
 * @property {Handle} handle
 *
 * @typedef {TokenEndpointState & TestServer & { tokenUrl: string }} TokenEndpoint
 */

/** Most time a held token answer waits for release(), so that nothing can hang. */
const maxHold = 5_000

/**
 * A token endpoint without a server: serve its `handle` (see createApi for one origin with both).
 * @param {TokenEndpointOptions} [options]
 * @returns {TokenEndpointState}
 */
export function createTokenEndpoint(options = {}) {
  const expiresIn = options.expiresIn ?? 3600
  /** @type {TokenRespond} */
  const initial =
    options.respond ??
    ((n) => ({ body: { access_token: `token-${n}`, token_type: 'bearer', expires_in: expiresIn } }))
  /** @type {import('./async.js').Gate | undefined} */
  let held
  /** @type {TokenEndpointState} */
  const endpoint = {
    requests: [],
    issued: [],
    respond: initial,
    hold() {
      endpoint.release()
      held = gate({ timeout: maxHold })
    },
    release() {
      held?.open()
      held = undefined
    },
    reset() {
      endpoint.release()
      endpoint.requests.length = 0
      endpoint.issued.length = 0
      endpoint.respond = initial
    },
    async handle(req, res, body) {
      const request = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: body.toString(),
        receivedAt: Date.now(),
      }
      endpoint.requests.push(request)
      for (const secret of new URLSearchParams(request.body).getAll('client_secret'))
        registerSecret(secret)
      const n = endpoint.requests.length
      if (held) await held.promise
      const answer = await endpoint.respond(n)
      const token = /** @type {{ access_token?: unknown } | undefined} */ (answer.body)
        ?.access_token
      if (typeof token === 'string' && (answer.status ?? 200) < 300) {
        endpoint.issued.push(token)
        // (registerSecret splits at a space: a token with one would register a fragment of it)
        if (!/\s/.test(token)) registerSecret(token)
      }
      await send(res, answer, 'application/json')
    },
  }
  return endpoint
}

/**
 * A token endpoint on its own origin; it answers any path (`tokenUrl` is `<origin>/token`).
 * @param {TokenEndpointOptions & ServerOptions} [options]
 * @returns {Promise<TokenEndpoint>}
 */
export async function startTokenEndpoint(options = {}) {
  const endpoint = createTokenEndpoint(options)
  const { origin, port, server, close } = await startServer(endpoint.handle, options)
  return Object.assign(endpoint, { origin, port, server, close, tokenUrl: `${origin}/token` })
}

/**
 * @typedef {object} ApiHit
 * @property {string} method
 * @property {string} url  path and query
 * @property {string | undefined} authorization
 * @property {string[]} authorizations  every Authorization value as sent (so duplicates show)
 * @property {IncomingHttpHeaders} headers
 * @property {string[]} rawHeaders
 * @property {string} body  as UTF-8
 * @property {Buffer} bytes  the body as it came
 * @property {number | undefined} status  what the API answered, once it has
 *
 * @typedef {(authorization: string | undefined, hit: ApiHit) => boolean} Accept
 * @typedef {(hit: ApiHit, accepted: boolean) => Answer | Promise<Answer>} ApiRespond
 *
 * @typedef {object} ApiOptions
 * @property {Accept} [accept]  which requests are authorized; by default `Bearer token-<n>`
 * @property {ApiRespond} [respond]  instead of the default answers (below)
 * @property {boolean} [record]  keep every hit in `hits` (true); a benchmark turns it off
 *
 * @typedef {object} ApiState
 * @property {ApiHit[]} hits  every request received
 * @property {Accept} accept
 * @property {ApiRespond} respond  by default 200 with JSON `{ ok, path, body }` when accepted,
 *   else 401 `unauthorized` with `WWW-Authenticate: Bearer error="invalid_token"`
 * @property {() => void} reset  forgets the hits, restores `accept` and `respond`
 * @property {Handle} handle
 *
 * @typedef {ApiState & TestServer} ApiServer
 */

/** @type {Accept} */
const bearerTokenN = (authorization) => /^Bearer token-\d+$/.test(authorization ?? '')

/** @type {ApiRespond} */
const protectedAnswer = (hit, accepted) =>
  accepted
    ? { body: { ok: true, path: hit.url, body: hit.body } }
    : {
        status: 401,
        headers: {
          'www-authenticate': 'Bearer error="invalid_token"',
          'content-type': 'text/plain',
        },
        body: 'unauthorized',
      }

/**
 * Every value a header was sent with, from the raw headers (so that duplicates show).
 * @param {string[]} rawHeaders
 * @param {string} name  lower case
 * @returns {string[]}
 */
export function rawHeaderValues(rawHeaders, name) {
  /** @type {string[]} */
  const values = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === name)
      values.push(/** @type {string} */ (rawHeaders[i + 1]))
  }
  return values
}

/**
 * A protected API without a server: serve its `handle`.
 * @param {ApiOptions} [options]
 * @returns {ApiState}
 */
export function createApi(options = {}) {
  const accept = options.accept ?? bearerTokenN
  const respond = options.respond ?? protectedAnswer
  /** @type {ApiState} */
  const api = {
    hits: [],
    accept,
    respond,
    reset() {
      api.hits.length = 0
      api.accept = accept
      api.respond = respond
    },
    async handle(req, res, bytes) {
      /** @type {ApiHit} */
      const hit = {
        method: req.method ?? '',
        url: req.url ?? '',
        authorization: req.headers.authorization,
        authorizations: rawHeaderValues(req.rawHeaders, 'authorization'),
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: bytes.toString(),
        bytes,
        status: undefined,
      }
      if (options.record !== false) api.hits.push(hit)
      const answer = await api.respond(hit, api.accept(hit.authorization, hit))
      hit.status = answer.status ?? 200
      await send(res, answer)
    },
  }
  return api
}

/**
 * A protected API on its own origin.
 * @param {ApiOptions & ServerOptions} [options]
 * @returns {Promise<ApiServer>}
 */
export async function startApi(options = {}) {
  const api = createApi(options)
  const { origin, port, server, close } = await startServer(api.handle, options)
  return Object.assign(api, { origin, port, server, close })
}

/**
 * Node's built-in fetch with an undici dispatcher. It works at run time; the loose type is
 * only because @types/node's bundled undici-types differ from undici's.
 * @param {string} url
 * @param {Omit<RequestInit, 'dispatcher'> & { dispatcher?: unknown, duplex?: 'half' }} [init]
 * @returns {Promise<Response>}
 */
export function builtinFetch(url, init = {}) {
  return fetch(url, /** @type {RequestInit} */ (init))
}

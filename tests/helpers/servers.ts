import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { registerSecret } from './secret-registry.js'

export interface TestServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string
  readonly server: Server
  close(): Promise<void>
}

/** A node:http server on 127.0.0.1 with an ephemeral port. */
export async function startServer(
  handle: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void | Promise<void>,
): Promise<TestServer> {
  const server = createServer((req, res) => {
    registerSecret(req.headers.authorization)
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      Promise.resolve(handle(req, res, Buffer.concat(chunks))).catch((error: unknown) => {
        res.statusCode = 500
        res.end(String(error))
      })
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    server,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

export interface TokenEndpoint extends TestServer {
  /** Token requests received so far. */
  readonly requests: { headers: IncomingMessage['headers']; body: string }[]
  /** Every access token issued so far. */
  readonly issued: string[]
  /** The next answer; by default a fresh bearer token per request. */
  respond: (n: number) => {
    status?: number
    headers?: Record<string, string>
    body: unknown
    delay?: number
  }
}

/** A token endpoint issuing `token-1`, `token-2`, … with `expires_in` seconds. */
export async function startTokenEndpoint(expiresIn = 3600): Promise<TokenEndpoint> {
  const requests: TokenEndpoint['requests'] = []
  const issued: string[] = []
  const endpoint = {} as { respond: TokenEndpoint['respond'] }
  endpoint.respond = (n) => {
    const token = `token-${n}`
    issued.push(token)
    registerSecret(token)
    return { body: { access_token: token, token_type: 'bearer', expires_in: expiresIn } }
  }
  const server = await startServer(async (req, res, body) => {
    requests.push({ headers: req.headers, body: body.toString() })
    for (const value of new URLSearchParams(body.toString()).getAll('client_secret'))
      registerSecret(value)
    const answer = endpoint.respond(requests.length)
    if (answer.delay) await new Promise((resolve) => setTimeout(resolve, answer.delay))
    res.writeHead(answer.status ?? 200, {
      'content-type': 'application/json',
      ...answer.headers,
    })
    res.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body))
  })
  return {
    ...server,
    requests,
    issued,
    get respond() {
      return endpoint.respond
    },
    set respond(value: TokenEndpoint['respond']) {
      endpoint.respond = value
    },
  }
}

export interface ApiServer extends TestServer {
  /** Every request received: its authorization header, method, path and body. */
  readonly hits: {
    authorization: string | undefined
    method: string
    url: string
    body: string
    headers: IncomingMessage['headers']
  }[]
  /** Tokens the API accepts; when undefined every `Bearer token-*` is accepted. */
  accept: (authorization: string | undefined) => boolean
}

/** A protected API: 200 with JSON for an accepted Authorization, else 401. */
export async function startApi(): Promise<ApiServer> {
  const hits: ApiServer['hits'] = []
  const state = {
    accept: (authorization: string | undefined) => /^Bearer token-\d+$/.test(authorization ?? ''),
  }
  const server = await startServer((req, res, body) => {
    const authorization = req.headers.authorization
    hits.push({
      authorization,
      method: req.method ?? '',
      url: req.url ?? '',
      body: body.toString(),
      headers: req.headers,
    })
    if (!state.accept(authorization)) {
      res.writeHead(401, {
        'www-authenticate': 'Bearer error="invalid_token"',
        'content-type': 'text/plain',
      })
      res.end('unauthorized')
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ ok: true, path: req.url, body: body.toString() }))
  })
  return {
    ...server,
    hits,
    get accept() {
      return state.accept
    },
    set accept(value: ApiServer['accept']) {
      state.accept = value
    },
  }
}

/**
 * Node's built-in fetch with an undici dispatcher. It works at run time; the
 * cast is only because @types/node's bundled undici-types differ from undici's.
 */
export function builtinFetch(
  url: string,
  init: Omit<RequestInit, 'dispatcher'> & { dispatcher?: unknown; duplex?: 'half' } = {},
): Promise<Response> {
  return fetch(url, init as RequestInit)
}

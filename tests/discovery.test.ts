// Discovery (issue #12): an `issuer` instead of a `tokenUrl`. RFC 8414 §3.1 first (the
// well-known segment between host and path), then OpenID Connect Discovery §4 (appended);
// the exact issuer match (RFC 8414 §3.3); mtls_endpoint_aliases (RFC 8705 §5); the
// server's token_endpoint_auth_methods_supported; lazy, single flight, cached, retried
// after a failure; no redirects. Real node:http servers on 127.0.0.1.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Agent, type Dispatcher, interceptors, MockAgent, request } from 'undici'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { accessToken, clientCredentials, TokenCache, TokenRequestError } from '../lib/index.js'
import type { ClientAuth, ClientAuthRequest } from '../lib/oauth/client-auth.js'
import { metadataUrls } from '../lib/oauth/discovery.js'
import { jwtBearer } from '../lib/oauth/jwt-bearer.js'
import { tokenExchange } from '../lib/oauth/token-exchange.js'
import { gate, rejectionOf, turns, until } from './support/async.js'
import { manualClock } from './support/clock.js'
import { expectNoSecrets } from './support/secrets.js'
import {
  createTokenEndpoint,
  startApi,
  startServer,
  type TestServer,
  type TokenEndpointState,
} from './support/servers.js'

const clientId = 'discovering-client'
const clientSecret = 'discovering-secret-4d2a'
const rfc8414 = '/.well-known/oauth-authorization-server'
const oidc = '/.well-known/openid-configuration'

/** What a metadata location answers: an object body goes as JSON. */
interface Answer {
  status?: number
  headers?: Record<string, string>
  body?: unknown
}

function send(res: ServerResponse, answer: Answer): void {
  const { status = 200, headers = {}, body } = answer
  const json = typeof body !== 'string'
  res.writeHead(status, json ? { 'content-type': 'application/json', ...headers } : headers)
  res.end(json ? JSON.stringify(body) : body)
}

/** An authorization server: metadata documents at the paths given, a token endpoint for POSTs. */
interface AuthorizationServer extends TestServer {
  /** `<origin>/tenant`: an issuer with a path. */
  readonly issuer: string
  readonly tokens: TokenEndpointState
  /** Path of every GET, in order. */
  readonly gets: string[]
  /** Path of every POST (token request), in order. */
  readonly posts: string[]
  /** What a GET of a path answers; anything else is a 404. */
  readonly documents: Map<string, (req: IncomingMessage) => Answer | Promise<Answer>>
  /** Serves `metadata` (issuer and token_endpoint filled in) at `path`. */
  serve(path: string, metadata?: Record<string, unknown>): void
}

async function startAuthorizationServer(): Promise<AuthorizationServer> {
  const tokens = createTokenEndpoint()
  const gets: string[] = []
  const posts: string[] = []
  const documents: AuthorizationServer['documents'] = new Map()
  const server = await startServer(async (req, res, body) => {
    const path = req.url ?? ''
    if (req.method === 'POST') {
      posts.push(path)
      return tokens.handle(req, res, body)
    }
    gets.push(path)
    const answer = documents.get(path)
    return send(res, answer === undefined ? { status: 404, body: 'not found' } : await answer(req))
  })
  const issuer = `${server.origin}/tenant`
  return Object.assign(server, {
    issuer,
    tokens,
    gets,
    posts,
    documents,
    serve(path: string, metadata: Record<string, unknown> = {}) {
      const document = { issuer, token_endpoint: `${issuer}/token`, ...metadata }
      documents.set(path, () => ({ body: document }))
    },
  })
}

/** A hand-written ClientAuth naming its method (as tlsClientAuth() or privateKeyJwt() do). */
function clientAuthWith(method?: string): ClientAuth & { requests: ClientAuthRequest[] } {
  const requests: ClientAuthRequest[] = []
  const auth = (request: ClientAuthRequest): void => {
    requests.push(request)
    request.form.set('client_id', request.clientId)
  }
  const withRequests = Object.assign(auth, { requests })
  return method === undefined
    ? withRequests
    : Object.defineProperty(withRequests, 'method', { value: method, enumerable: true })
}

let as: AuthorizationServer

beforeEach(async () => {
  as = await startAuthorizationServer()
})

afterEach(async () => {
  await as.close()
})

/** Holds the answer of a GET of each of `paths` until the gate returned opens (5 s at most). */
function holdDocuments(
  answer: () => Answer = () => ({
    body: { issuer: as.issuer, token_endpoint: `${as.issuer}/token` },
  }),
  paths: string[] = [`${rfc8414}/tenant`],
): { open(): void } {
  const held = gate({ timeout: 5000 })
  for (const path of paths) {
    as.documents.set(path, async () => {
      await held.promise
      return answer()
    })
  }
  return held
}

function grant(options: Partial<Parameters<typeof clientCredentials>[0]> = {}) {
  return clientCredentials({ issuer: as.issuer, clientId, clientSecret, ...options })
}

describe('where the metadata is', () => {
  it.each([
    [
      'https://as.example/tenant',
      `https://as.example${rfc8414}/tenant`,
      `https://as.example/tenant${oidc}`,
    ],
    [
      'https://as.example/tenant/',
      `https://as.example${rfc8414}/tenant`,
      `https://as.example/tenant${oidc}`,
    ],
    ['https://as.example', `https://as.example${rfc8414}`, `https://as.example${oidc}`],
    ['https://as.example/', `https://as.example${rfc8414}`, `https://as.example${oidc}`],
    [
      'https://as.example:8443/realms/a%20b',
      `https://as.example:8443${rfc8414}/realms/a%20b`,
      `https://as.example:8443/realms/a%20b${oidc}`,
    ],
  ])('issuer %s → RFC 8414 %s, then OIDC %s', (issuer, first, second) => {
    expect(metadataUrls(issuer).map(String)).toEqual([first, second])
  })

  it('RFC 8414 §3.1 first (inserted between host and path): one GET, then the token request', async () => {
    as.serve(`${rfc8414}/tenant`)
    const tokens = new TokenCache({ fetchToken: grant() })
    expect((await tokens.get()).accessToken).toBe('token-1')
    expect(as.gets).toEqual([`${rfc8414}/tenant`])
    expect(as.posts).toEqual(['/tenant/token'])
  })

  it('OpenID Connect Discovery (appended) when the RFC 8414 location has none', async () => {
    as.serve(`/tenant${oidc}`)
    const tokens = new TokenCache({ fetchToken: grant() })
    expect((await tokens.get()).accessToken).toBe('token-1')
    expect(as.gets).toEqual([`${rfc8414}/tenant`, `/tenant${oidc}`])
    expect(as.posts).toEqual(['/tenant/token'])
  })

  it('an issuer without a path: both documents at the root', async () => {
    as.documents.set(oidc, () => ({
      body: { issuer: as.origin, token_endpoint: `${as.origin}/oauth/token` },
    }))
    const tokens = new TokenCache({ fetchToken: grant({ issuer: as.origin }) })
    await tokens.get()
    expect(as.gets).toEqual([rfc8414, oidc])
    expect(as.posts).toEqual(['/oauth/token'])
  })

  it('a 200 that is not metadata (an HTML page) counts as none there', async () => {
    as.documents.set(`${rfc8414}/tenant`, () => ({
      headers: { 'content-type': 'text/html' },
      body: '<html>app shell</html>',
    }))
    as.serve(`/tenant${oidc}`)
    await new TokenCache({ fetchToken: grant() }).get()
    expect(as.posts).toEqual(['/tenant/token'])
  })

  it('no metadata at either location: a TokenRequestError naming both; no token request', async () => {
    const error = await rejectionOf(new TokenCache({ fetchToken: grant() }).get())
    expect(error).toBeInstanceOf(TokenRequestError)
    const { message } = error as Error
    expect(message).toContain(`${as.origin}${rfc8414}/tenant answered 404`)
    expect(message).toContain(`${as.issuer}${oidc} answered 404`)
    expect(as.posts).toEqual([])
  })
})

describe('what the metadata must say', () => {
  it.each([
    ['another issuer', (issuer: string) => `${issuer}/other`],
    ['the issuer with a trailing slash', (issuer: string) => `${issuer}/`],
    ['the issuer in another case', (issuer: string) => issuer.toUpperCase()],
  ])(
    '%s (RFC 8414 §3.3: identical or not used) → TokenRequestError; nothing sent',
    async (_name, issuerOf) => {
      as.serve(`${rfc8414}/tenant`, {
        issuer: issuerOf(as.issuer),
        token_endpoint: `${as.origin}/evil/token`,
      })
      const error = await rejectionOf(new TokenCache({ fetchToken: grant() }).get())
      expect(error).toBeInstanceOf(TokenRequestError)
      expect((error as Error).message).toContain('RFC 8414 §3.3')
      expect((error as Error).message).toContain(as.issuer)
      expect(as.posts).toEqual([])
    },
  )

  it('no token_endpoint, or one that is not an http(s) URL → TokenRequestError', async () => {
    as.serve(`${rfc8414}/tenant`, { token_endpoint: undefined })
    const missing = await rejectionOf(
      grant()({ key: 'default', signal: AbortSignal.timeout(5000) }),
    )
    expect((missing as Error).message).toMatch(/no token_endpoint/)
    as.serve(`${rfc8414}/tenant`, { token_endpoint: 'javascript:alert(1)' })
    const bad = await rejectionOf(grant()({ key: 'default', signal: AbortSignal.timeout(5000) }))
    expect(bad).toBeInstanceOf(TokenRequestError)
    expect((bad as Error).message).toMatch(/token_endpoint must be an http\(s\) URL/)
    expect(as.posts).toEqual([])
  })

  it('an https issuer whose metadata names an http: token endpoint → TokenRequestError', async () => {
    const mock = new MockAgent()
    mock.disableNetConnect()
    mock
      .get('https://as.example')
      .intercept({ path: `${rfc8414}/tenant`, method: 'GET' })
      .reply(200, {
        issuer: 'https://as.example/tenant',
        token_endpoint: 'http://as.example/token',
      })
    try {
      const error = await rejectionOf(
        new TokenCache({
          fetchToken: grant({ issuer: 'https://as.example/tenant', dispatcher: mock }),
        }).get(),
      )
      expect(error).toBeInstanceOf(TokenRequestError)
      expect((error as Error).message).toMatch(/http: token_endpoint for an https: issuer/)
    } finally {
      await mock.close()
    }
  })

  it.each(['tls_client_auth', 'self_signed_tls_client_auth'])(
    'a ClientAuth whose method is %s uses mtls_endpoint_aliases.token_endpoint (RFC 8705 §5)',
    async (method) => {
      as.serve(`${rfc8414}/tenant`, {
        mtls_endpoint_aliases: { token_endpoint: `${as.origin}/mtls/token` },
      })
      const auth = clientAuthWith(method)
      await new TokenCache({
        fetchToken: clientCredentials({ issuer: as.issuer, clientId, clientAuth: auth }),
      }).get()
      expect(as.posts).toEqual(['/mtls/token'])
      expect(auth.requests[0]?.tokenUrl.href).toBe(`${as.origin}/mtls/token`)
      expect(auth.requests[0]?.issuer).toBe(as.issuer)
    },
  )

  it('any other method uses token_endpoint, alias or not; the tls method without an alias too', async () => {
    as.serve(`${rfc8414}/tenant`, {
      mtls_endpoint_aliases: { token_endpoint: `${as.origin}/mtls/token` },
    })
    await new TokenCache({ fetchToken: grant() }).get()
    expect(as.posts).toEqual(['/tenant/token'])
    // Another issuer (the document is cached for the process per issuer), with no alias.
    const plain = await startAuthorizationServer()
    try {
      plain.serve(`${rfc8414}/tenant`)
      await new TokenCache({
        fetchToken: clientCredentials({
          issuer: plain.issuer,
          clientId,
          clientAuth: clientAuthWith('tls_client_auth'),
        }),
      }).get()
      expect(plain.posts).toEqual(['/tenant/token'])
    } finally {
      await plain.close()
    }
  })

  it('a method the server does not list → a clear TokenRequestError; nothing sent', async () => {
    as.serve(`${rfc8414}/tenant`, {
      token_endpoint_auth_methods_supported: ['private_key_jwt', 'tls_client_auth'],
    })
    const error = await rejectionOf(new TokenCache({ fetchToken: grant() }).get())
    expect(error).toBeInstanceOf(TokenRequestError)
    expect((error as Error).message).toBe(
      `Authorization server ${as.issuer} does not support token endpoint auth method client_secret_basic (its token_endpoint_auth_methods_supported: private_key_jwt, tls_client_auth); configure a client authentication it supports`,
    )
    expectNoSecrets(error, [clientSecret])
    expect(as.posts).toEqual([])
  })

  it('the two RFC 8705 methods stand for each other (the same on the wire)', async () => {
    as.serve(`${rfc8414}/tenant`, {
      token_endpoint_auth_methods_supported: ['private_key_jwt', 'self_signed_tls_client_auth'],
    })
    const auth = clientAuthWith('tls_client_auth')
    await new TokenCache({
      fetchToken: clientCredentials({ issuer: as.issuer, clientId, clientAuth: auth }),
    }).get()
    expect(as.posts).toEqual(['/tenant/token'])
  })

  it('checked only when the server lists its methods, and only for a ClientAuth that names one', async () => {
    as.serve(`${rfc8414}/tenant`) // no list: RFC 8414's default is not enforced
    await new TokenCache({ fetchToken: grant({ authMethod: 'client_secret_post' }) }).get()
    as.serve(`${rfc8414}/tenant`, { token_endpoint_auth_methods_supported: ['private_key_jwt'] })
    await new TokenCache({
      fetchToken: clientCredentials({ issuer: as.issuer, clientId, clientAuth: clientAuthWith() }),
    }).get()
    await new TokenCache({
      fetchToken: clientCredentials({
        issuer: as.issuer,
        clientId,
        clientAuth: clientAuthWith('private_key_jwt'),
      }),
    }).get()
    expect(as.posts).toHaveLength(3)
  })
})

describe('when and how often', () => {
  it('lazy: nothing is fetched when the grant is made, only on the first token fetch', async () => {
    as.serve(`${rfc8414}/tenant`)
    const fetchToken = grant()
    await turns(5)
    expect(as.gets).toEqual([])
    await fetchToken({ key: 'default', signal: AbortSignal.timeout(5000) })
    expect(as.gets).toHaveLength(1)
  })

  it('one discovery request for 50 concurrent first fetches (50 keys), then cached', async () => {
    const held = holdDocuments()
    const tokens = new TokenCache({ fetchToken: grant() })
    const all = Promise.all(Array.from({ length: 50 }, (_, i) => tokens.get(`key-${i}`)))
    await until(() => as.gets.length === 1, 2000, 'the discovery request')
    await turns(10)
    held.open()
    const got = await all
    expect(new Set(got.map((token) => token.accessToken)).size).toBe(50)
    expect(as.gets).toEqual([`${rfc8414}/tenant`])
    expect(as.posts).toHaveLength(50)
    await tokens.get('one-more-key')
    expect(as.gets).toHaveLength(1)
  })

  it('through accessToken(): requests wait for discovery, then carry the token', async () => {
    as.serve(`${rfc8414}/tenant`)
    const api = await startApi()
    const agent = new Agent()
    try {
      const dispatcher = agent.compose(accessToken({ origins: api.origin, fetchToken: grant() }))
      const statuses = await Promise.all(
        Array.from({ length: 5 }, async () => {
          const response = await request(`${api.origin}/readers`, { dispatcher })
          await response.body.dump()
          return response.statusCode
        }),
      )
      expect(statuses).toEqual([200, 200, 200, 200, 200])
      expect(api.hits.map((hit) => hit.authorization)).toEqual(Array(5).fill('Bearer token-1'))
      expect(as.gets).toHaveLength(1)
    } finally {
      await agent.close()
      await api.close()
    }
  })

  it('a failure is shared by every waiter, not cached, and backs off like a token fetch', async () => {
    const held = holdDocuments(
      () => ({ status: 503, body: 'down' }),
      [`${rfc8414}/tenant`, `/tenant${oidc}`],
    )
    const clock = manualClock()
    const tokens = new TokenCache({ fetchToken: grant(), now: clock.now })
    const waiters = Array.from({ length: 5 }, (_, i) => rejectionOf(tokens.get(`key-${i}`)))
    await until(() => as.gets.length === 1, 2000, 'the discovery request')
    held.open()
    const errors = await Promise.all(waiters)
    expect(errors[0]).toBeInstanceOf(TokenRequestError)
    for (const error of errors) expect(error).toBe(errors[0])
    expect((errors[0] as TokenRequestError).status).toBe(503)
    // One round: both locations asked once, whatever the number of waiters.
    expect(as.gets).toEqual([`${rfc8414}/tenant`, `/tenant${oidc}`])

    // Inside key-0's backoff: the last error at once, no request.
    expect(await rejectionOf(tokens.get('key-0'))).toBe(errors[0])
    expect(as.gets).toHaveLength(2)

    // After it: discovery is tried again, and now succeeds.
    as.serve(`${rfc8414}/tenant`)
    clock.advance(60_000)
    expect((await tokens.get('key-0')).accessToken).toBe('token-1')
    expect(as.gets).toHaveLength(3)
  })

  it("a caller's abort detaches only that caller; the discovery goes on for the others", async () => {
    const held = holdDocuments()
    const fetchToken = grant()
    const quitter = new AbortController()
    const reason = new Error('caller gave up')
    const first = rejectionOf(fetchToken({ key: 'a', signal: quitter.signal }))
    const second = fetchToken({ key: 'b', signal: AbortSignal.timeout(5000) })
    await until(() => as.gets.length === 1, 2000, 'the discovery request')
    quitter.abort(reason)
    expect(await first).toBe(reason)
    held.open()
    expect((await second).accessToken).toBe('token-1')
    expect(as.gets).toHaveLength(1)
    expect(as.posts).toHaveLength(1)
  })

  it('when every caller gave up, the discovery is dropped and the next fetch starts anew', async () => {
    const held = holdDocuments()
    const fetchToken = grant()
    const quitter = new AbortController()
    const first = rejectionOf(fetchToken({ key: 'a', signal: quitter.signal }))
    await until(() => as.gets.length === 1, 2000, 'the discovery request')
    quitter.abort(new Error('gave up'))
    await first
    held.open()
    expect((await fetchToken({ key: 'b', signal: AbortSignal.timeout(5000) })).accessToken).toBe(
      'token-1',
    )
    expect(as.gets).toHaveLength(2)
  })

  it('tokenUrl and issuer: no discovery request at all; the issuer reaches the client auth', async () => {
    const auth = clientAuthWith('private_key_jwt')
    const tokens = new TokenCache({
      fetchToken: clientCredentials({
        tokenUrl: `${as.origin}/direct/token`,
        issuer: as.issuer,
        clientId,
        clientAuth: auth,
      }),
    })
    await tokens.get()
    expect(as.gets).toEqual([])
    expect(as.posts).toEqual(['/direct/token'])
    expect(auth.requests[0]?.issuer).toBe(as.issuer)
  })

  it('every grant discovers: tokenExchange and jwtBearer with an issuer', async () => {
    as.serve(`${rfc8414}/tenant`)
    await new TokenCache({
      fetchToken: tokenExchange({
        issuer: as.issuer,
        clientId,
        clientSecret,
        subjectToken: 'subject-token-d1',
        subjectTokenType: 'urn:ietf:params:oauth:token-type:jwt',
      }),
    }).get()
    await new TokenCache({
      fetchToken: jwtBearer({ issuer: as.issuer, assertion: 'assertion.jwt.d1' }),
    }).get()
    expect(as.posts).toEqual(['/tenant/token', '/tenant/token'])
    expect(as.gets).toHaveLength(1) // cached for the process: the second grant reuses it
  })

  it('one document per issuer for the process: grants share it; another dispatcher fetches its own', async () => {
    as.serve(`${rfc8414}/tenant`, {
      mtls_endpoint_aliases: { token_endpoint: `${as.origin}/mtls/token` },
    })
    // Two grants, two methods: each derives its own endpoint from the one document.
    await Promise.all([
      new TokenCache({ fetchToken: grant() }).get(),
      new TokenCache({
        fetchToken: clientCredentials({
          issuer: as.issuer,
          clientId,
          clientAuth: clientAuthWith('tls_client_auth'),
        }),
      }).get(),
    ])
    expect(as.gets).toEqual([`${rfc8414}/tenant`])
    expect([...as.posts].sort()).toEqual(['/mtls/token', '/tenant/token'])
    const agent = new Agent()
    try {
      await new TokenCache({ fetchToken: grant({ dispatcher: agent }) }).get()
      expect(as.gets).toEqual([`${rfc8414}/tenant`, `${rfc8414}/tenant`])
    } finally {
      await agent.close()
    }
  })
})

describe('redirects and dispatchers', () => {
  let other: TestServer & { gets: string[] }

  beforeEach(async () => {
    const gets: string[] = []
    const server = await startServer((req, res) => {
      gets.push(req.url ?? '')
      return send(res, {
        body: { issuer: as.issuer, token_endpoint: `${server.origin}/steal/token` },
      })
    })
    other = Object.assign(server, { gets })
  })

  afterEach(async () => {
    await other.close()
  })

  function redirectEverything(status: number): void {
    for (const path of [`${rfc8414}/tenant`, `/tenant${oidc}`]) {
      as.documents.set(path, () => ({
        status,
        headers: { location: `${other.origin}${path}` },
      }))
    }
  }

  it.each([301, 302, 307, 308])(
    'a %i is not followed (global fetch): the other origin receives nothing',
    async (status) => {
      redirectEverything(status)
      const error = await rejectionOf(new TokenCache({ fetchToken: grant() }).get())
      expect(error).toBeInstanceOf(TokenRequestError)
      expect((error as Error).message).toContain(`answered ${status}`)
      expect(other.gets).toEqual([])
      expect(as.posts).toEqual([])
    },
  )

  it('through the grant’s dispatcher, even one composing redirect(): nothing followed', async () => {
    redirectEverything(302)
    const seen: string[] = []
    const agent = new Agent()
    const dispatcher: Dispatcher = agent
      .compose((dispatch) => (options, handler) => {
        seen.push(`${options.method} ${options.origin}${options.path}`)
        return dispatch(options, handler)
      })
      .compose(interceptors.redirect({ maxRedirections: 3 }))
    try {
      const error = await rejectionOf(new TokenCache({ fetchToken: grant({ dispatcher }) }).get())
      expect(error).toBeInstanceOf(TokenRequestError)
      expect(other.gets).toEqual([])
      // Both discovery requests went through the grant's dispatcher.
      expect(seen).toEqual([`GET ${as.origin}${rfc8414}/tenant`, `GET ${as.origin}/tenant${oidc}`])
    } finally {
      await agent.close()
    }
  })

  it('an unreachable issuer: a TokenRequestError with the cause, nothing else tried', async () => {
    const closed = await startServer(() => {})
    await closed.close()
    const error = await rejectionOf(
      new TokenCache({ fetchToken: grant({ issuer: `${closed.origin}/tenant` }) }).get(),
    )
    expect(error).toBeInstanceOf(TokenRequestError)
    expect((error as Error).message).toBe(
      `Metadata document ${closed.origin}${rfc8414}/tenant could not be reached`,
    )
    expect((error as Error).cause).toBeDefined()
  })

  it('a metadata document over 1 MiB is not read to the end', async () => {
    as.documents.set(`${rfc8414}/tenant`, () => ({
      body: { issuer: as.issuer, token_endpoint: `${as.issuer}/token`, pad: 'x'.repeat(2 ** 20) },
    }))
    const error = await rejectionOf(new TokenCache({ fetchToken: grant() }).get())
    expect((error as Error).message).toMatch(/more than 1048576 bytes; not a metadata document/)
    expect(as.posts).toEqual([])
  })
})

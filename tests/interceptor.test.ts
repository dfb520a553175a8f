import { Readable } from 'node:stream'
import { Agent, Client, interceptors, Pool, request, fetch as undiciFetch } from 'undici'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import {
  AccessTokenError,
  accessToken,
  clientCredentials,
  TokenCache,
  TokenRequestError,
} from '../lib/index.js'
import { manualClock } from './support/clock.js'
import { recordingHandler } from './support/handlers.js'
import {
  type ApiServer,
  builtinFetch,
  createApi,
  createTokenEndpoint,
  startApi,
  startServer,
  startTokenEndpoint,
  type TestServer,
  type TokenEndpoint,
} from './support/servers.js'

const clientSecret = 'interceptor-test-secret'

let api: ApiServer
let other: ApiServer
let idp: TokenEndpoint
let agent: Agent

beforeAll(async () => {
  api = await startApi()
  other = await startApi({ accept: () => true })
  idp = await startTokenEndpoint()
})

afterAll(async () => {
  await Promise.all([api.close(), other.close(), idp.close()])
})

beforeEach(() => {
  api.reset()
  other.reset()
  idp.reset()
  agent = new Agent({ keepAliveTimeout: 10_000 })
})

afterEach(async () => {
  await agent.close()
})

function fetchToken() {
  return clientCredentials({ tokenUrl: `${idp.origin}/token`, clientId: 'client', clientSecret })
}

function authAgent(options: Partial<Parameters<typeof accessToken>[0]> = {}) {
  return agent.compose(accessToken({ origins: api.origin, fetchToken: fetchToken(), ...options }))
}

/** Accept only the newest token the endpoint issued (older ones count as revoked). */
function acceptOnlyNewest(): void {
  api.accept = (authorization) => authorization === `Bearer ${idp.issued.at(-1)}`
}

describe('composition', () => {
  test('the interceptor returns a dispatch function of exactly two parameters (undici 8 checks it)', () => {
    const interceptor = accessToken({ origins: api.origin, fetchToken: fetchToken() })
    const dispatch = interceptor(() => true)
    expect(dispatch.length).toBe(2)
  })

  test('rejects bad options with clear errors', () => {
    expect(() => accessToken({ origins: [], fetchToken: fetchToken() })).toThrow(/origins/)
    expect(() => accessToken({ origins: 'not a url', fetchToken: fetchToken() })).toThrow()
    expect(() => accessToken({ origins: api.origin })).toThrow(/fetchToken/)
  })

  test('undici.request, undici fetch and built-in fetch with a dispatcher all carry the token', async () => {
    const dispatcher = authAgent()
    const viaRequest = await request(`${api.origin}/a`, { dispatcher })
    expect(viaRequest.statusCode).toBe(200)
    await viaRequest.body.dump()
    const viaUndiciFetch = await undiciFetch(`${api.origin}/b`, { dispatcher })
    expect(viaUndiciFetch.status).toBe(200)
    await viaUndiciFetch.arrayBuffer()
    // Node 20's built-in fetch sends legacy (onConnect…) handlers.
    const viaBuiltinFetch = await builtinFetch(`${api.origin}/c`, { dispatcher })
    expect(viaBuiltinFetch.status).toBe(200)
    await viaBuiltinFetch.arrayBuffer()
    expect(api.hits.map((hit) => hit.authorization)).toEqual([
      'Bearer token-1',
      'Bearer token-1',
      'Bearer token-1',
    ])
    expect(idp.requests).toHaveLength(1)
  })

  test('a Pool or Client compose works with undici.request (it passes the origin)', async () => {
    for (const dispatcher of [new Pool(api.origin), new Client(api.origin)]) {
      const composed = dispatcher.compose(
        accessToken({ origins: api.origin, fetchToken: fetchToken() }),
      )
      const response = await request(`${api.origin}/pool`, { dispatcher: composed })
      expect(response.statusCode).toBe(200)
      await response.body.dump()
      await dispatcher.close()
    }
    expect(api.hits.map((hit) => hit.authorization)).toEqual(['Bearer token-1', 'Bearer token-2'])
  })

  test('a dispatch without an origin (undici 7 Pool/Client) is refused with a named fix, never sent', async () => {
    const pool = new Pool(api.origin)
    const composed = pool.compose(accessToken({ origins: api.origin, fetchToken: fetchToken() }))
    const recorder = recordingHandler()
    composed.dispatch({ path: '/no-origin', method: 'GET' }, recorder.handler)
    expect(await recorder.ended).toBe('error')
    const error = recorder.error as Error
    expect(error).toBeInstanceOf(AccessTokenError)
    expect((error as AccessTokenError).code).toBe('UAT_NO_ORIGIN')
    expect(error.message).toMatch(/new Agent\(\)\.compose/)
    expect(api.hits).toHaveLength(0)
    expect(idp.requests).toHaveLength(0)
    await pool.close()
  })
})

describe('single flight and scoping', () => {
  test('1 000 concurrent requests on a cold cache → 1 token request, all 200 with the token', async () => {
    const dispatcher = authAgent()
    const responses = await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        const response = await request(`${api.origin}/readers/${i}`, { dispatcher })
        await response.body.dump()
        return response.statusCode
      }),
    )
    expect(responses.every((status) => status === 200)).toBe(true)
    expect(idp.requests).toHaveLength(1)
    expect(api.hits).toHaveLength(1000)
    expect(new Set(api.hits.map((hit) => hit.authorization))).toEqual(new Set(['Bearer token-1']))
  })

  test('other origins never see the token, and pay nothing', async () => {
    const dispatcher = authAgent()
    const response = await request(`${other.origin}/elsewhere`, {
      dispatcher,
      headers: { authorization: 'Basic mine' },
    })
    await response.body.dump()
    expect(other.hits[0]?.authorization).toBe('Basic mine') // untouched
    expect(idp.requests).toHaveLength(0) // no token fetched for it
  })

  test('origins are compared normalised: case, default port, trailing path', async () => {
    const { port } = new URL(api.origin)
    const dispatcher = agent.compose(
      accessToken({ origins: [`HTTP://127.0.0.1:${port}/some/path`], fetchToken: fetchToken() }),
    )
    const response = await request(`${api.origin}/x`, { dispatcher })
    await response.body.dump()
    expect(response.statusCode).toBe(200)
  })

  test('a predicate receives the normalised origin', async () => {
    const seen: string[] = []
    const dispatcher = agent.compose(
      accessToken({
        origins: (origin) => {
          seen.push(origin)
          return origin === api.origin
        },
        fetchToken: fetchToken(),
      }),
    )
    await (await request(`${api.origin}/x`, { dispatcher })).body.dump()
    await (await request(`${other.origin}/y`, { dispatcher })).body.dump()
    expect(seen).toEqual([api.origin, other.origin])
    expect(api.hits[0]?.authorization).toBe('Bearer token-1')
    expect(other.hits[0]?.authorization).toBeUndefined()
  })

  test('key(request) picks the token; each key is fetched once', async () => {
    const keys: string[] = []
    const dispatcher = agent.compose(
      accessToken({
        origins: api.origin,
        key: ({ path }) => (path.startsWith('/tenant-a') ? 'a' : 'b'),
        fetchToken: async ({ key }) => {
          keys.push(key)
          return { accessToken: `token-${key === 'a' ? 1 : 2}`, expiresIn: 60 }
        },
      }),
    )
    await Promise.all(
      ['/tenant-a/1', '/tenant-b/1', '/tenant-a/2', '/tenant-b/2'].map(async (path) => {
        await (await request(`${api.origin}${path}`, { dispatcher })).body.dump()
      }),
    )
    expect(keys.sort()).toEqual(['a', 'b'])
    for (const hit of api.hits) {
      expect(hit.authorization).toBe(
        hit.url.startsWith('/tenant-a') ? 'Bearer token-1' : 'Bearer token-2',
      )
    }
  })

  test('a shared TokenCache serves two interceptors with one fetch', async () => {
    const tokens = new TokenCache({ fetchToken: fetchToken() })
    const one = new Agent().compose(accessToken({ origins: api.origin, tokens }))
    const two = new Agent().compose(accessToken({ origins: api.origin, tokens }))
    await (await request(`${api.origin}/1`, { dispatcher: one })).body.dump()
    await (await request(`${api.origin}/2`, { dispatcher: two })).body.dump()
    expect(idp.requests).toHaveLength(1)
  })

  test('a custom fetchToken that calls the API origin itself is not decorated and does not deadlock', async () => {
    let dispatcher: ReturnType<typeof authAgent>
    dispatcher = authAgent({
      fetchToken: async () => {
        // e.g. a token exchange served by the API host: goes through the same dispatcher.
        const response = await request(`${api.origin}/token-exchange`, { dispatcher })
        await response.body.dump()
        return { accessToken: 'token-7', expiresIn: 60 }
      },
    })
    const response = await request(`${api.origin}/data`, { dispatcher })
    await response.body.dump()
    expect(response.statusCode).toBe(200)
    expect(api.hits.map((hit) => [hit.url, hit.authorization])).toEqual([
      ['/token-exchange', undefined],
      ['/data', 'Bearer token-7'],
    ])
  })

  test('the token endpoint on the API origin is never sent a token (no recursion)', async () => {
    // One origin: the token endpoint at /token, an API echoing the Authorization it got.
    const sharedToken = createTokenEndpoint({
      respond: () => ({ body: { access_token: 'token-9', expires_in: 60 } }),
    })
    const sharedApi = createApi({
      respond: (hit) => ({ body: hit.authorization ?? 'none' }),
    })
    const shared = await startServer((req, res, body) =>
      (req.url === '/token' ? sharedToken : sharedApi).handle(req, res, body),
    )
    try {
      const dispatcher = agent.compose(
        accessToken({
          origins: shared.origin,
          fetchToken: clientCredentials({
            tokenUrl: `${shared.origin}/token`,
            clientId: 'client',
            clientSecret,
            dispatcher: agent.compose(
              accessToken({ origins: shared.origin, fetchToken: fetchToken() }),
            ),
          }),
        }),
      )
      const tokens = new TokenCache({ fetchToken: async () => ({ accessToken: 'unused' }) })
      expect(tokens).toBeDefined()
      const response = await request(`${shared.origin}/data`, { dispatcher })
      expect(await response.body.text()).toBe('Bearer token-9')
      expect(idp.requests).toHaveLength(0) // the inner interceptor did not decorate the token request
      expect(sharedToken.requests.map((r) => r.headers.authorization)).toEqual([
        expect.stringMatching(/^Basic /),
      ])
    } finally {
      await shared.close()
    }
  })
})

describe('headers', () => {
  const shapes: [string, () => unknown][] = [
    ['plain object', () => ({ Authorization: 'Basic old', 'x-trace': 'abc' })],
    ['flat array', () => ['AUTHORIZATION', 'Basic old', 'x-trace', 'abc']],
    [
      'flat array of Buffers',
      () => [Buffer.from('authorization'), 'Basic old', Buffer.from('x-trace'), 'abc'],
    ],
    [
      'array of pairs',
      () => [
        ['Authorization', 'Basic old'],
        ['x-trace', 'abc'],
      ],
    ],
    [
      'Map',
      () =>
        new Map([
          ['authorization', 'Basic old'],
          ['x-trace', 'abc'],
        ]),
    ],
  ]

  test.each(shapes)(
    '%s: the token replaces the caller’s authorization; other headers stay',
    async (_, headers) => {
      const dispatcher = authAgent()
      const response = await request(`${api.origin}/h`, {
        dispatcher,
        headers: headers() as Record<string, string>,
      })
      await response.body.dump()
      expect(response.statusCode).toBe(200)
      const hit = api.hits[0]
      expect(hit?.authorization).toBe('Bearer token-1')
      expect(hit?.headers['x-trace']).toBe('abc')
    },
  )

  test('built-in fetch with a Headers object', async () => {
    const dispatcher = authAgent()
    const response = await builtinFetch(`${api.origin}/h`, {
      dispatcher,
      headers: new Headers({ Authorization: 'Basic old', 'X-Trace': 'abc' }),
    })
    await response.arrayBuffer()
    expect(api.hits[0]?.authorization).toBe('Bearer token-1')
    expect(api.hits[0]?.headers['x-trace']).toBe('abc')
  })

  test('headers(token) sets several headers from one token response; token_type spelled as sent unless bearer', async () => {
    const dispatcher = authAgent({
      fetchToken: async () => ({
        accessToken: 'token-3',
        tokenType: 'bearer',
        expiresIn: 60,
        subscription_key: 'sub-1',
      }),
      headers: (token) => ({
        Authorization: `Bearer ${token.accessToken}`,
        'Ocp-Apim-Subscription-Key': String(token.subscription_key),
      }),
    })
    const response = await request(`${api.origin}/two`, {
      dispatcher,
      headers: { 'ocp-apim-subscription-key': 'caller' },
    })
    await response.body.dump()
    expect(api.hits[0]?.authorization).toBe('Bearer token-3')
    expect(api.hits[0]?.headers['ocp-apim-subscription-key']).toBe('sub-1')
  })

  test('a non-bearer token_type is sent as the server spelled it', async () => {
    api.accept = () => true
    const dispatcher = authAgent({
      fetchToken: async () => ({ accessToken: 'abc', tokenType: 'DPoP', expiresIn: 60 }),
    })
    await (await request(`${api.origin}/dpop`, { dispatcher })).body.dump()
    expect(api.hits[0]?.authorization).toBe('DPoP abc')
  })

  test('lower-case bearer from the server is sent as Bearer (RFC 6750)', async () => {
    const dispatcher = authAgent()
    await (await request(`${api.origin}/b`, { dispatcher })).body.dump()
    expect(idp.requests).toHaveLength(1)
    expect(api.hits[0]?.authorization).toBe('Bearer token-1')
  })
})

describe('fail closed', () => {
  const failures: [string, () => void][] = [
    [
      '500 with HTML',
      () => {
        idp.respond = () => ({
          status: 500,
          headers: { 'content-type': 'text/html' },
          body: '<h1>oops</h1>',
        })
      },
    ],
    [
      'garbage JSON',
      () => {
        idp.respond = () => ({ body: '{"access_token": ' })
      },
    ],
    [
      'no access_token',
      () => {
        idp.respond = () => ({ body: { token_type: 'bearer' } })
      },
    ],
    [
      'invalid_client',
      () => {
        idp.respond = () => ({
          status: 401,
          body: { error: 'invalid_client', error_description: 'bad secret' },
        })
      },
    ],
  ]

  test.each(failures)(
    'token endpoint %s → the request is not sent; the error is the TokenRequestError',
    async (_, setup) => {
      setup()
      const dispatcher = authAgent()
      const error = await request(`${api.origin}/never`, { dispatcher }).then(
        () => undefined,
        (reason: unknown) => reason,
      )
      expect(error).toBeInstanceOf(TokenRequestError)
      expect(api.hits).toHaveLength(0)
      const text = `${(error as Error).message} ${(error as Error).stack} ${JSON.stringify(error)}`
      expect(text).not.toContain(clientSecret)
      expect(text).not.toContain(Buffer.from(`client:${clientSecret}`).toString('base64'))
    },
  )

  test('token endpoint down → fetch rejects with TypeError whose cause is the TokenRequestError', async () => {
    const closed = await startServer(() => {})
    const { origin } = closed
    await closed.close()
    const dispatcher = authAgent({
      fetchToken: clientCredentials({ tokenUrl: `${origin}/token`, clientId: 'c', clientSecret }),
    })
    const error = await undiciFetch(`${api.origin}/never`, { dispatcher }).then(
      () => undefined,
      (reason: unknown) => reason,
    )
    expect(error).toBeInstanceOf(TypeError)
    expect((error as Error).cause).toBeInstanceOf(TokenRequestError)
    expect(((error as Error).cause as Error).cause).toBeDefined() // the network error
    expect(api.hits).toHaveLength(0)
    const builtin = await builtinFetch(`${api.origin}/never`, { dispatcher }).then(
      () => undefined,
      (reason: unknown) => reason,
    )
    expect((builtin as Error).cause).toBeInstanceOf(TokenRequestError)
    expect(api.hits).toHaveLength(0)
  })
})

describe('401: renew once and retry', () => {
  test('revoked token: 100 concurrent requests → all 200, one extra token request, no request hits the API more than twice', async () => {
    const dispatcher = authAgent()
    await (await request(`${api.origin}/warm`, { dispatcher })).body.dump()
    acceptOnlyNewest()
    idp.issued.push('revoked') // token-1 is no longer accepted
    idp.respond = (n) => ({ body: { access_token: `token-${n}`, expires_in: 3600 }, delay: 30 })
    api.hits.length = 0
    const statuses = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const response = await request(`${api.origin}/r/${i}`, {
          dispatcher,
          method: 'POST',
          body: `n=${i}`,
        })
        await response.body.dump()
        return response.statusCode
      }),
    )
    expect(statuses.every((status) => status === 200)).toBe(true)
    expect(idp.requests).toHaveLength(2)
    const perRequest = new Map<string, number>()
    for (const hit of api.hits) perRequest.set(hit.url, (perRequest.get(hit.url) ?? 0) + 1)
    expect(Math.max(...perRequest.values())).toBeLessThanOrEqual(2)
    expect(perRequest.size).toBe(100)
    // the retries resent the same bodies
    for (const hit of api.hits) expect(hit.body).toBe(`n=${hit.url.slice(3)}`)
  })

  test('an API that answers 401 to everything: 200 sequential requests each get the 401 after ≤ 2 hits; renewals rate-limited', async () => {
    api.accept = () => false
    const clock = manualClock(1_000_000)
    const dispatcher = authAgent({ now: clock.now, minRenewalInterval: 5_000 })
    for (let i = 0; i < 200; i++) {
      clock.advance(100) // 20 s in all
      const before = api.hits.length
      const response = await request(`${api.origin}/deny/${i}`, { dispatcher })
      expect(response.statusCode).toBe(401)
      expect(await response.body.text()).toBe('unauthorized')
      expect(api.hits.length - before).toBeLessThanOrEqual(2)
    }
    // 1 first token + at most one forced renewal per 5 s of a 20 s run
    expect(idp.requests.length).toBeGreaterThanOrEqual(2)
    expect(idp.requests.length).toBeLessThanOrEqual(1 + 5)
  })

  test('a Bearer challenge with an error other than invalid_token is passed through unretried', async () => {
    const denying = await startServer((_, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="x", error="invalid_request"' })
      res.end('bad request')
    })
    try {
      const dispatcher = agent.compose(
        accessToken({ origins: denying.origin, fetchToken: fetchToken() }),
      )
      const response = await request(`${denying.origin}/x`, { dispatcher })
      expect(response.statusCode).toBe(401)
      expect(await response.body.text()).toBe('bad request')
      expect(idp.requests).toHaveLength(1)
    } finally {
      await denying.close()
    }
  })

  test('retryOnUnauthorized: false passes the 401 through', async () => {
    api.accept = () => false
    const dispatcher = authAgent({ retryOnUnauthorized: false })
    const response = await request(`${api.origin}/x`, { dispatcher })
    expect(response.statusCode).toBe(401)
    await response.body.dump()
    expect(api.hits).toHaveLength(1)
  })

  test('an oversized 401 body is aborted, not drained, and the retry still succeeds', async () => {
    let first = true
    const big = await startServer((req, res) => {
      if (first) {
        first = false
        res.writeHead(401, { 'content-type': 'text/plain' })
        res.end('x'.repeat(512 * 1024))
        return
      }
      res.writeHead(200)
      res.end(req.headers.authorization)
    })
    try {
      const dispatcher = agent.compose(
        accessToken({ origins: big.origin, fetchToken: fetchToken() }),
      )
      const response = await request(`${big.origin}/x`, { dispatcher })
      expect(response.statusCode).toBe(200)
      expect(await response.body.text()).toBe('Bearer token-2')
    } finally {
      await big.close()
    }
  })
})

describe('bodies on the retry', () => {
  beforeEach(() => acceptOnlyNewest())

  /** Makes sure a token is cached, then revokes it. */
  async function warmThenRevoke(dispatcher: ReturnType<typeof authAgent>): Promise<void> {
    api.accept = () => true
    await (await request(`${api.origin}/warm`, { dispatcher })).body.dump()
    acceptOnlyNewest()
    idp.issued.push('revoked') // the cached token is no longer accepted
    idp.respond = (n) => ({ body: { access_token: `token-${n}`, expires_in: 3600 } })
    api.hits.length = 0
  }

  const bodies: [string, () => unknown][] = [
    ['string', () => 'hello, string'],
    ['Buffer', () => Buffer.from('hello, buffer')],
    ['Uint8Array', () => new TextEncoder().encode('hello, bytes')],
    ['Readable', () => Readable.from([Buffer.from('hello, '), Buffer.from('stream')])],
    [
      'async iterable',
      () =>
        (async function* () {
          yield Buffer.from('hello, ')
          yield Buffer.from('iterable')
        })(),
    ],
  ]

  test.each(bodies)(
    'undici.request with a %s body → retried with the same bytes',
    async (_, body) => {
      const dispatcher = authAgent()
      await warmThenRevoke(dispatcher)
      const response = await request(`${api.origin}/post`, {
        dispatcher,
        method: 'POST',
        body: body() as string,
      })
      expect(response.statusCode).toBe(200)
      await response.body.dump()
      expect(api.hits).toHaveLength(2)
      expect(api.hits[1]?.body).toBe(api.hits[0]?.body)
      expect(api.hits[1]?.body).toMatch(/^hello, /)
      expect(api.hits[1]?.authorization).toBe('Bearer token-2')
      // content-length appears once (node:http would reject duplicates with different values)
      expect(Array.isArray(api.hits[1]?.headers['content-length'])).toBe(false)
    },
  )

  test('undici fetch and built-in fetch stream bodies are recorded and replayed', async () => {
    const dispatcher = authAgent({ minRenewalInterval: 0 }) // two renewals back to back
    await warmThenRevoke(dispatcher)
    const viaUndici = await undiciFetch(`${api.origin}/undici`, {
      dispatcher,
      method: 'POST',
      body: 'from undici fetch',
    })
    expect(viaUndici.status).toBe(200)
    await viaUndici.arrayBuffer()
    await warmThenRevoke(dispatcher)
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('from a '))
        controller.enqueue(new TextEncoder().encode('web stream'))
        controller.close()
      },
    })
    const viaBuiltin = await builtinFetch(`${api.origin}/builtin`, {
      dispatcher,
      method: 'POST',
      body: stream,
      duplex: 'half',
    })
    expect(viaBuiltin.status).toBe(200)
    await viaBuiltin.arrayBuffer()
    expect(api.hits.map((hit) => hit.body)).toEqual(['from a web stream', 'from a web stream'])
    expect(api.hits.map((hit) => hit.authorization)).toEqual([
      `Bearer ${idp.issued.at(-3)}`,
      `Bearer ${idp.issued.at(-1)}`,
    ])
  })

  test('a stream over maxReplayBytes → the 401 reaches the caller', async () => {
    const dispatcher = authAgent({ maxReplayBytes: 10 })
    await warmThenRevoke(dispatcher)
    const response = await request(`${api.origin}/big`, {
      dispatcher,
      method: 'POST',
      body: Readable.from([Buffer.from('more than ten bytes')]),
    })
    expect(response.statusCode).toBe(401)
    await response.body.dump()
    expect(api.hits).toHaveLength(1)
  })
})

describe('redirects', () => {
  let redirector: TestServer
  beforeAll(async () => {
    redirector = await startServer((req, res) => {
      const target = req.url?.includes('same') ? `${api.origin}/landed` : `${other.origin}/landed`
      res.writeHead(302, { location: target })
      res.end()
    })
  })
  afterAll(() => redirector.close())

  test('compose(accessToken, redirect): a hop to another origin never carries the token (custom header too)', async () => {
    const dispatcher = agent.compose(
      accessToken({
        origins: [api.origin, redirector.origin],
        fetchToken: fetchToken(),
        headers: (token) => ({ authorization: `Bearer ${token.accessToken}`, 'x-api-key': 'k-1' }),
      }),
      interceptors.redirect({ maxRedirections: 3 }),
    )
    const response = await request(`${redirector.origin}/go-away`, { dispatcher })
    expect(response.statusCode).toBe(200)
    await response.body.dump()
    expect(other.hits).toHaveLength(1)
    expect(other.hits[0]?.authorization).toBeUndefined()
    expect(other.hits[0]?.headers['x-api-key']).toBeUndefined()
  })

  test('compose(accessToken, redirect): a hop back to an allowed origin gets the token', async () => {
    const dispatcher = agent.compose(
      accessToken({ origins: [api.origin], fetchToken: fetchToken() }),
      interceptors.redirect({ maxRedirections: 3 }),
    )
    const response = await request(`${redirector.origin}/same`, { dispatcher })
    expect(response.statusCode).toBe(200)
    await response.body.dump()
    expect(api.hits.at(-1)?.authorization).toBe('Bearer token-1')
  })

  test('undici fetch redirect: mode follows through the same rule', async () => {
    const dispatcher = agent.compose(
      accessToken({ origins: [api.origin, redirector.origin], fetchToken: fetchToken() }),
    )
    const response = await undiciFetch(`${redirector.origin}/go-away`, { dispatcher })
    expect(response.status).toBe(200)
    await response.arrayBuffer()
    expect(other.hits.at(-1)?.authorization).toBeUndefined()
  })
})

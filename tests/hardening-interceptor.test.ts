// Regression tests for the defects an adversarial review found in the interceptor
// (issue #10). Each test name says which README promise it guards.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { Agent, interceptors, request } from 'undici'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import {
  AccessTokenError,
  accessToken,
  clientCredentials,
  type FetchToken,
  TokenCache,
} from '../lib/index.js'
import { gate, settled, sleep, turns, withTimeout } from './support/async.js'
import { recordingHandler } from './support/handlers.js'
import {
  type ApiServer,
  createApi,
  createTokenEndpoint,
  startApi,
  startServer,
  startTokenEndpoint,
  type TokenEndpoint,
} from './support/servers.js'
import { tokenSource } from './support/token-sources.js'

const clientSecret = 'hardening-interceptor-secret'

let api: ApiServer
let idp: TokenEndpoint
let agent: Agent

beforeAll(async () => {
  api = await startApi()
  idp = await startTokenEndpoint()
})

afterAll(async () => {
  await Promise.all([api.close(), idp.close()])
})

beforeEach(() => {
  api.reset()
  idp.reset()
  agent = new Agent({ keepAliveTimeout: 10_000 })
})

afterEach(async () => {
  await agent.close()
})

function fetchToken(): FetchToken {
  return clientCredentials({ tokenUrl: `${idp.origin}/token`, clientId: 'client', clientSecret })
}

/** Settles `promise`, or fails the test if it has not settled after `ms` (a hang guard, not a timing goal). */
function settles<T>(promise: Promise<T>, ms = 5_000): Promise<PromiseSettledResult<T>> {
  return withTimeout(settled(promise), ms, 'the request (it hangs)')
}

describe("guards 'a token source that repeats its token does not defeat the cache' (#10.2)", () => {
  test('a source that hands back the same token after a 401: cached again, one renewal, a transient 401 ends in 200', async () => {
    idp.respond = () => ({
      body: { access_token: 'token-same', token_type: 'bearer', expires_in: 3600 },
    })
    let rejectNext = 0
    api.accept = (authorization) => {
      if (rejectNext > 0) {
        rejectNext--
        return false
      }
      return authorization === 'Bearer token-same'
    }
    const dispatcher = agent.compose(accessToken({ origins: api.origin, fetchToken: fetchToken() }))
    const first = await request(`${api.origin}/a`, { dispatcher })
    await first.body.dump()
    expect(idp.requests).toHaveLength(1)

    rejectNext = 1 // one transient 401
    const second = await request(`${api.origin}/b`, { dispatcher })
    await second.body.dump()
    expect(second.statusCode).toBe(200)
    expect(idp.requests).toHaveLength(2) // one forced renewal, which returned the same token

    // The repeated token is cached like any renewed token: no more token requests.
    for (let i = 0; i < 10; i++) {
      const { statusCode, body } = await request(`${api.origin}/c${i}`, { dispatcher })
      await body.dump()
      expect(statusCode).toBe(200)
    }
    expect(idp.requests).toHaveLength(2)
  })

  test('an API that answers 401 to everything, with a source that repeats its token: at most one renewal per minRenewalInterval', async () => {
    idp.respond = () => ({
      body: { access_token: 'token-same', token_type: 'bearer', expires_in: 3600 },
    })
    api.accept = () => false
    const dispatcher = agent.compose(
      accessToken({ origins: api.origin, fetchToken: fetchToken(), minRenewalInterval: 60_000 }),
    )
    const statuses: number[] = []
    for (let i = 0; i < 20; i++) {
      const { statusCode, body } = await request(`${api.origin}/x${i}`, { dispatcher })
      await body.dump()
      statuses.push(statusCode)
    }
    expect(statuses.every((status) => status === 401)).toBe(true)
    // One fetch on the cold cache, one forced renewal — not 2–4 per request.
    expect(idp.requests).toHaveLength(2)
    // The first request was retried once (2 hits), every other was answered at once (1 hit).
    expect(api.hits).toHaveLength(21)
  })

  test('an API that answers 401 to everything, with a source that issues new tokens: at most one renewal per minRenewalInterval', async () => {
    api.accept = () => false
    const dispatcher = agent.compose(
      accessToken({ origins: api.origin, fetchToken: fetchToken(), minRenewalInterval: 60_000 }),
    )
    for (let i = 0; i < 20; i++) {
      const { body } = await request(`${api.origin}/x${i}`, { dispatcher })
      await body.dump()
    }
    expect(idp.requests).toHaveLength(2)
  })

  test('TokenCache: a renewal that brings back the same token after invalidate() caches it', async () => {
    const source = tokenSource(() => ({ accessToken: 'same', expiresIn: 3600 }))
    const tokens = new TokenCache({ fetchToken: source.fetchToken })
    await tokens.get()
    await tokens.invalidate('default', 'same')
    expect((await tokens.get()).accessToken).toBe('same')
    expect((await tokens.get()).accessToken).toBe('same')
    expect(source.calls).toHaveLength(2)
  })
})

describe("guards 'nothing escapes dispatch: every request ends with exactly one terminal callback' (#10.3)", () => {
  const badInputs: {
    name: string
    options: Partial<Parameters<typeof accessToken>[0]>
    headers?: unknown
  }[] = [
    {
      name: 'headers(token) returning a number',
      options: { headers: () => ({ 'x-n': 42 }) as unknown as Record<string, string> },
    },
    {
      name: 'headers(token) throwing',
      options: {
        headers: () => {
          throw new Error('boom')
        },
      },
    },
    { name: 'a caller header array of odd length', options: {}, headers: ['x-a', 'b', 'x-c'] },
    {
      name: 'key(request) throwing',
      options: {
        key: () => {
          throw new Error('no key')
        },
      },
    },
  ]

  for (const warm of [false, true]) {
    for (const { name, options, headers } of badInputs) {
      test(`${warm ? 'warm' : 'cold'} cache, ${name}: the request fails promptly with a clear error, never sent`, async () => {
        const tokens = new TokenCache({ fetchToken: fetchToken() })
        if (warm) await tokens.get()
        const dispatcher = agent.compose(accessToken({ origins: api.origin, tokens, ...options }))
        const unhandled: unknown[] = []
        const onUnhandled = (reason: unknown): void => {
          unhandled.push(reason)
        }
        process.on('unhandledRejection', onUnhandled)
        try {
          const result = await settles(
            request(`${api.origin}/bad`, {
              dispatcher,
              headers: headers as Record<string, string> | undefined,
            }),
          )
          expect(result.status).toBe('rejected')
          const reason = (result as PromiseRejectedResult).reason as Error
          expect(reason).toBeInstanceOf(Error)
          expect(reason.message.length).toBeGreaterThan(0)
          await turns()
          expect(unhandled).toEqual([])
          expect(api.hits).toHaveLength(0)
        } finally {
          process.off('unhandledRejection', onUnhandled)
        }
      })
    }
  }

  test('a bad header on the retry after a 401 ends the request too', async () => {
    let calls = 0
    const dispatcher = agent.compose(
      accessToken({
        origins: api.origin,
        fetchToken: fetchToken(),
        headers: (token) => {
          calls++
          // The first token is fine; the renewed one makes a bad header.
          return token.accessToken === 'token-1'
            ? { authorization: `Bearer ${token.accessToken}` }
            : ({ 'x-n': 42 } as unknown as Record<string, string>)
        },
      }),
    )
    api.accept = () => false
    const result = await settles(request(`${api.origin}/retry`, { dispatcher }))
    expect(result.status).toBe('rejected')
    expect(calls).toBe(2)
    expect(api.hits).toHaveLength(1)
  })
})

describe("guards 'only the configured origins ever see the token' against the authority actually used (#10.6)", () => {
  let other: ApiServer
  beforeAll(async () => {
    other = await startApi({ accept: () => true })
  })
  afterAll(() => other.close())
  beforeEach(() => other.reset())

  const hostOf = (origin: string): string => new URL(origin).host

  for (const warm of [false, true]) {
    test(`${warm ? 'warm' : 'cold'}: a Host header naming another authority is refused with AccessTokenError`, async () => {
      const tokens = new TokenCache({ fetchToken: fetchToken() })
      if (warm) await tokens.get()
      const dispatcher = agent.compose(accessToken({ origins: api.origin, tokens }))
      for (const headers of [
        { host: 'evil.example.net' },
        { Host: 'evil.example.net' },
        ['host', 'evil.example.net'],
        [['HOST', 'evil.example.net']],
        new Map([['host', hostOf(other.origin)]]),
      ]) {
        const result = await settles(
          request(`${api.origin}/x`, {
            dispatcher,
            headers: headers as unknown as Record<string, string>,
          }),
        )
        expect(result.status).toBe('rejected')
        const reason = (result as PromiseRejectedResult).reason
        expect(reason).toBeInstanceOf(AccessTokenError)
        expect((reason as AccessTokenError).code).toBe('UAT_FOREIGN_AUTHORITY')
      }
      expect(api.hits).toHaveLength(0)
    })
  }

  test('a Host header equal to the origin’s own authority is fine (any case, default port spelled out or not)', async () => {
    const dispatcher = agent.compose(accessToken({ origins: api.origin, fetchToken: fetchToken() }))
    for (const host of [hostOf(api.origin), hostOf(api.origin).toUpperCase()]) {
      const { statusCode, body } = await request(`${api.origin}/x`, {
        dispatcher,
        headers: { host },
      })
      await body.dump()
      expect(statusCode).toBe(200)
    }
    const sent: unknown[] = []
    const tokens = new TokenCache({ fetchToken: async () => ({ accessToken: 'abc' }) })
    await tokens.get()
    const https = accessToken({ origins: 'https://api.example.com', tokens })
    const dispatch = https((opts) => {
      sent.push(opts)
      return true
    })
    const recorder = recordingHandler()
    dispatch(
      {
        origin: 'https://api.example.com',
        path: '/',
        method: 'GET',
        headers: { host: 'API.example.com:443' },
      },
      recorder.handler,
    )
    await sleep(50)
    expect(recorder.error).toBeUndefined()
    expect(sent).toHaveLength(1)
  })

  test('an absolute-form path (http://other/x) is refused, the other host gets nothing', async () => {
    for (const warm of [false, true]) {
      const tokens = new TokenCache({ fetchToken: fetchToken() })
      if (warm) await tokens.get()
      const dispatcher = agent.compose(accessToken({ origins: api.origin, tokens }))
      const result = await settles(
        new Promise((resolve, reject) => {
          dispatcher
            .request({ origin: api.origin, path: `${other.origin}/x`, method: 'GET' })
            .then(resolve, reject)
        }),
      )
      expect(result.status).toBe('rejected')
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(AccessTokenError)
    }
    expect(api.hits).toHaveLength(0)
    expect(other.hits).toHaveLength(0)
  })
})

describe("guards 'only the configured origins ever see the token' for a Client/Pool with an origin of its own (#10.7)", () => {
  test('undici 8 passes the dispatcher’s own origin to the interceptor: that origin is what is matched', async () => {
    const tokens = new TokenCache({ fetchToken: async () => ({ accessToken: 'tok' }) })
    await tokens.get()
    const interceptor = accessToken({ origins: 'https://b.example.com', tokens }) as unknown as (
      dispatch: (opts: Record<string, unknown>, handler: unknown) => boolean,
      origin?: string | null,
    ) => (opts: Record<string, unknown>, handler: unknown) => boolean
    const sent: Record<string, unknown>[] = []
    // new Client('https://a.example.com').compose(...) on undici 8: the factory gets a's origin.
    const dispatch = interceptor((opts) => {
      sent.push(opts)
      return true
    }, 'https://a.example.com')
    const { handler, calls } = recordingHandler()
    dispatch({ origin: 'https://b.example.com', path: '/', method: 'GET', headers: {} }, handler)
    // a is not an allowed origin: the token for b never goes to a's connection.
    expect(JSON.stringify(sent)).not.toContain('tok')
    expect(calls.filter((call) => call.startsWith('error')).length + sent.length).toBe(1)

    // A Client whose own origin is allowed gets the token.
    const allowed = interceptor((opts) => {
      sent.push(opts)
      return true
    }, 'https://b.example.com')
    sent.length = 0
    allowed({ path: '/', method: 'GET', headers: {} }, handler)
    expect(JSON.stringify(sent)).toContain('Bearer tok')
  })
})

describe("guards 'no event ever carries userinfo' (#10.8)", () => {
  test('the retry event publishes the normalised origin, without userinfo', async () => {
    const events: { origin: string }[] = []
    const listener = (message: unknown): void => {
      events.push(message as { origin: string })
    }
    subscribe('undici-access-token:retry', listener)
    try {
      acceptOnlyNewestToken()
      const tokens = new TokenCache({ fetchToken: fetchToken() })
      await tokens.get()
      idp.respond = (n) => ({ body: { access_token: `token-${n}`, expires_in: 3600 } })
      api.accept = (authorization) => authorization === 'Bearer token-2'
      const dispatcher = agent.compose(accessToken({ origins: api.origin, tokens }))
      const url = new URL(api.origin)
      const withUserinfo = `http://user:hunter2-password@${url.host}`
      const { statusCode, body } = await dispatcher.request({
        origin: withUserinfo,
        path: '/x',
        method: 'GET',
      })
      await body.dump()
      expect(statusCode).toBe(200)
      expect(events).toHaveLength(1)
      expect(events[0]?.origin).toBe(api.origin)
      expect(JSON.stringify(events)).not.toContain('hunter2')
    } finally {
      unsubscribe('undici-access-token:retry', listener)
    }
  })
})

function acceptOnlyNewestToken(): void {
  api.accept = (authorization) => authorization === `Bearer ${idp.issued.at(-1)}`
}

describe("guards 'same-origin redirect hops get the token' while a token fetch runs (#10.12)", () => {
  test('a hop dispatched from a connection first opened by a token fetch still gets the token', async () => {
    // One server is both the token endpoint and the API, so the token request and API
    // requests share one kept-alive connection (longer than undici's 2 s threshold).
    const tokenEndpoint = createTokenEndpoint({
      respond: (n) => ({ body: { access_token: `shared-${n}`, expires_in: 3600 } }),
    })
    const sharedApi = createApi({
      accept: (authorization) => authorization === `Bearer ${tokenEndpoint.issued[0]}`,
      respond: (hit, accepted) =>
        hit.url === '/start'
          ? { status: 302, headers: { location: '/hop' } }
          : { status: accepted ? 200 : 401 },
    })
    const server = await startServer(
      (req, res, body) => (req.url === '/token' ? tokenEndpoint : sharedApi).handle(req, res, body),
      { keepAliveTimeout: 30_000 },
    )
    const hopAuthorizations = (since: number) =>
      sharedApi.hits
        .slice(since)
        .filter((hit) => hit.url !== '/start')
        .map((hit) => hit.authorization)
    const base = new Agent({ connections: 1, keepAliveTimeout: 30_000, pipelining: 1 })
    const slowGate = gate()
    const shared = clientCredentials({
      tokenUrl: `${server.origin}/token`,
      clientId: 'client',
      clientSecret,
      dispatcher: base,
    })
    const dispatcher = base.compose(
      accessToken({
        origins: server.origin,
        key: ({ path }) => (path.startsWith('/slow') ? 'slow' : 'default'),
        fetchToken: async (context) => {
          if (context.key === 'slow') {
            await slowGate.promise
            return { accessToken: 'slow-token', expiresIn: 3600 }
          }
          return shared(context)
        },
        retryOnUnauthorized: false,
      }),
      interceptors.redirect({ maxRedirections: 3 }),
    )
    try {
      const first = await request(`${server.origin}/start`, { dispatcher })
      await first.body.dump()
      expect(first.statusCode).toBe(200)
      // Another key's token fetch is now running (and stays so) ...
      const slow = request(`${server.origin}/slow`, { dispatcher }).catch(() => undefined)
      await sleep(20)
      const since = sharedApi.hits.length
      // ... while a same-origin hop is dispatched from the shared connection.
      const second = await request(`${server.origin}/start`, { dispatcher })
      await second.body.dump()
      expect(hopAuthorizations(since)).toEqual([`Bearer ${tokenEndpoint.issued[0]}`])
      expect(second.statusCode).toBe(200)
      slowGate.open()
      await slow
    } finally {
      slowGate.open()
      await base.close()
      await server.close()
    }
  })
})

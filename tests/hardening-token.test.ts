import { Agent, type Dispatcher, request } from 'undici'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  accessToken,
  clientCredentials,
  type FetchToken,
  memoryStore,
  type Token,
  TokenCache,
  TokenRequestError,
  type TokenResponse,
} from '../lib/index.js'
import { storedToken, toToken } from '../lib/token.js'
import { rejectionOf as rejection, sleep } from './support/async.js'
import { unsignedJwt as jwt, jwtPayload } from './support/jwt.js'
import { expectNoSecrets } from './support/secrets.js'
import {
  type ApiServer,
  startApi,
  startTokenEndpoint,
  type TokenEndpoint,
} from './support/servers.js'
import { tokenSource } from './support/token-sources.js'

/*
 * Hardening of what is made of a token response (issue #10): a token that cannot be
 * a header value, a JWT whose exp comes before expires_in, lifetimes under a second,
 * and values read back from a shared store. Real node:http servers on 127.0.0.1.
 */

const clientId = 'hardening-client'
const clientSecret = 'hardening-secret-3e9a-77f1'

/** A token endpoint whose answer to the n-th request is `body(n)` (a 200). */
function tokenEndpoint(body: (n: number) => Record<string, unknown>): Promise<TokenEndpoint> {
  return startTokenEndpoint({ respond: (n) => ({ body: body(n) }) })
}

/** clientCredentials() with this file's client against `endpoint`, its requests through `tokenAgent`. */
function grant(endpoint: TokenEndpoint, tokenAgent: Agent): FetchToken {
  return clientCredentials({
    tokenUrl: endpoint.tokenUrl,
    clientId,
    clientSecret,
    dispatcher: tokenAgent,
  })
}

/** Sets what the token endpoint answers from now on (a 200 with this body). */
function issue(endpoint: TokenEndpoint, body: (n: number) => Record<string, unknown>): void {
  endpoint.respond = (n) => ({ body: body(n) })
}

/** The Authorization header of every request the API received. */
const authorizations = (api: ApiServer) => api.hits.map((hit) => hit.authorization)

/** The TokenRequestError in `error`'s cause chain, if any. */
function tokenRequestErrorIn(error: unknown): TokenRequestError | undefined {
  for (let current = error, depth = 0; depth < 10 && current !== undefined; depth++) {
    if (current instanceof TokenRequestError) return current
    current = current instanceof Error ? current.cause : undefined
  }
  return undefined
}

describe("guards 'if no token can be had, the request is not sent': a token that cannot be a header value", () => {
  let endpoint: TokenEndpoint
  let api: ApiServer
  let tokenAgent: Agent
  let agent: Agent
  let dispatcher: Dispatcher

  beforeEach(async () => {
    endpoint = await tokenEndpoint(() => ({ access_token: 'unused', expires_in: 3600 }))
    api = await startApi({ accept: () => true })
    tokenAgent = new Agent()
    agent = new Agent()
    dispatcher = agent.compose(
      accessToken({ origins: api.origin, fetchToken: grant(endpoint, tokenAgent) }),
    )
  })
  afterEach(async () => {
    await agent.close()
    await tokenAgent.close()
    await api.close()
    await endpoint.close()
  })

  // RFC 9110 §5.5 field values; VCHAR only, as lib/token.ts explains.
  const badAccessTokens: Record<string, string> = {
    'U+2028 (line separator)': 'abc\u2028def-0001',
    'Latin-1 letters (above U+007E)': 'tökén-0002',
    'a character above U+00FF': 'tok\u0100en-0003',
    'a space inside': 'abc def-0004',
    'a leading space': ' abcdef-0005',
    'a trailing tab': 'abcdef-0006\t',
    'DEL (U+007F)': 'abc\x7fdef-0007',
    'a control character (U+0001)': 'abc\x01def-0008',
    'CR LF (header injection)': 'abc-0009\r\nx-injected: 1',
  }

  it.each(Object.entries(badAccessTokens))(
    'an access_token with %s: TokenRequestError without the token, the API never called',
    async (_, token) => {
      issue(endpoint, () => ({ access_token: token, token_type: 'Bearer', expires_in: 3600 }))
      for (let attempt = 0; attempt < 2; attempt++) {
        const error = await rejection(request(`${api.origin}/readers`, { dispatcher }))
        const tokenError = tokenRequestErrorIn(error)
        expect(tokenError, 'a TokenRequestError in the cause chain').toBeInstanceOf(
          TokenRequestError,
        )
        expect(tokenError?.message).toMatch(/access_token/)
        expectNoSecrets(error, [token, clientSecret])
      }
      expect(authorizations(api)).toEqual([])
    },
  )

  const badTokenTypes: Record<string, string> = {
    'a space': 'Bear er',
    'a Latin-1 letter': 'Beärer',
    'a comma': 'Bearer,',
    'U+2028': 'Bearer\u2028',
    'a tab': 'Bearer\t',
    quotes: '"Bearer"',
  }

  it.each(Object.entries(badTokenTypes))(
    'a token_type with %s (not an RFC 9110 token): TokenRequestError, the API never called',
    async (_, tokenType) => {
      const token = 'well-formed-token-for-a-bad-type'
      issue(endpoint, () => ({ access_token: token, token_type: tokenType, expires_in: 3600 }))
      const error = await rejection(request(`${api.origin}/readers`, { dispatcher }))
      expect(tokenRequestErrorIn(error)?.message).toMatch(/token_type/)
      expectNoSecrets(error, [token, clientSecret])
      expect(authorizations(api)).toEqual([])
    },
  )

  it('still accepts any visible-ASCII token and a tchar token_type (sent as given)', async () => {
    const tokens = ['a+b/c==', 'opaque"quoted",with;odd=chars~!', jwt({ sub: 'svc', exp: 4e9 })]
    for (const token of tokens) {
      issue(endpoint, () => ({ access_token: token, token_type: 'X-Custom_1', expires_in: 3600 }))
      const cache = new TokenCache({ fetchToken: grant(endpoint, tokenAgent) })
      const single = agent.compose(accessToken({ origins: api.origin, tokens: cache }))
      const response = await request(`${api.origin}/readers`, { dispatcher: single })
      await response.body.dump()
      expect(response.statusCode).toBe(200)
    }
    expect(authorizations(api)).toEqual(tokens.map((token) => `X-Custom_1 ${token}`))
  })
})

describe("guards 'a token is usable until expiresAt − skew': a JWT exp earlier than expires_in wins", () => {
  let endpoint: TokenEndpoint
  let tokenAgent: Agent
  // Injected clock, 0.7 s into a second: a server flooring iat loses 0.7 s.
  const t0 = Date.UTC(2026, 0, 1) + 700
  const second = Math.floor(t0 / 1000)

  beforeEach(async () => {
    endpoint = await tokenEndpoint(() => ({ access_token: 'unused', expires_in: 3600 }))
    tokenAgent = new Agent()
  })
  afterEach(async () => {
    await tokenAgent.close()
    await endpoint.close()
  })

  function cache(store = memoryStore()): TokenCache {
    return new TokenCache({
      store,
      now: () => t0,
      fetchToken: grant(endpoint, tokenAgent),
    })
  }

  it('expires_in 3 with exp = floor(now) + 2: expiresAt is exp', async () => {
    const exp = second + 2
    issue(endpoint, () => ({
      access_token: jwt({ sub: 'svc', iat: second - 1, exp }),
      token_type: 'Bearer',
      expires_in: 3,
    }))
    const token = await cache().get()
    expect(token.expiresAt).toBe(exp * 1000)
    expect(token.obtainedAt).toBe(t0)
  })

  it('with expiresAt from a custom source too: the earlier one wins', () => {
    const exp = second + 60
    const token = toToken({ accessToken: jwt({ exp }), expiresAt: t0 + 3_600_000 }, t0, 300_000)
    expect(token.expiresAt).toBe(exp * 1000)
  })

  it('never lengthens: an exp later than expires_in leaves expires_in', async () => {
    issue(endpoint, () => ({
      access_token: jwt({ iat: second, exp: second + 7200 }),
      expires_in: 60,
    }))
    expect((await cache().get()).expiresAt).toBe(t0 + 60_000)
  })

  it.each([
    ['iat after exp', { iat: second + 7200, exp: second + 60 }],
    ['nbf after exp', { nbf: second + 7200, exp: second + 60 }],
    ['iat not a number', { iat: 'yesterday', exp: second + 60 }],
    ['nbf null', { nbf: null, exp: second + 60 }],
    ['exp not positive', { exp: -1 }],
  ])('ignores a JWT whose claims make no sense (%s)', async (_, claims) => {
    issue(endpoint, () => ({ access_token: jwt(claims), expires_in: 3600 }))
    expect((await cache().get()).expiresAt).toBe(t0 + 3_600_000)
  })

  it('a JWT already past its exp, whatever expires_in says: TokenRequestError, nothing cached', async () => {
    const token = jwt({ iat: second - 120, exp: second - 60 })
    issue(endpoint, () => ({ access_token: token, expires_in: 3600 }))
    const store = memoryStore()
    const error = await rejection(cache(store).get())
    expect(error).toBeInstanceOf(TokenRequestError)
    expect((error as Error).message).toMatch(/expired/)
    expectNoSecrets(error, [token, clientSecret])
    expect(await store.get('default')).toBeUndefined()
  })
})

describe("guards 'fail closed, never send an expired token': short JWT lifetimes roll over end to end", () => {
  it('2–5 s tokens from an issuer flooring iat, its clock 1 s behind: no expired token reaches the API', async () => {
    // The issuer floors iat to the second and its clock runs a second behind this host's, so
    // its exp comes up to 2 s before expires_in (seconds from receipt) ends. The API checks exp.
    const lifetimes = [4, 5]
    let expiredArrivals = 0
    const endpoint = await tokenEndpoint((n) => {
      const lifetime = lifetimes[n % lifetimes.length] ?? 4
      const iat = Math.floor((Date.now() - 1000) / 1000)
      return {
        access_token: jwt({ sub: 'svc', iat, exp: iat + lifetime, n }),
        token_type: 'Bearer',
        expires_in: lifetime,
      }
    })
    const api = await startApi({
      accept: (authorization) => {
        const exp = jwtPayload(authorization)?.exp
        const fresh = typeof exp === 'number' && exp * 1000 > Date.now()
        if (!fresh) expiredArrivals++
        return fresh
      },
    })
    const tokenAgent = new Agent()
    const agent = new Agent()
    try {
      const dispatcher = agent.compose(
        accessToken({ origins: api.origin, fetchToken: grant(endpoint, tokenAgent) }),
      )
      const statuses: number[] = []
      // Bounded: until three tokens have been issued (two rollovers), or 15 s.
      const giveUpAt = Date.now() + 15_000
      while (endpoint.requests.length < 3 && Date.now() < giveUpAt) {
        const response = await request(`${api.origin}/readers`, { dispatcher })
        await response.body.dump()
        statuses.push(response.statusCode)
        await sleep(20)
      }
      expect(endpoint.requests.length).toBeGreaterThanOrEqual(3)
      expect(expiredArrivals).toBe(0)
      expect(statuses.every((status) => status === 200)).toBe(true)
    } finally {
      await agent.close()
      await tokenAgent.close()
      await api.close()
      await endpoint.close()
    }
  })
})

describe("guards 'a token that is already expired is an error, not an endless refetch loop': lifetimes under 1 s", () => {
  const now = Date.UTC(2026, 0, 1) + 250

  it.each([0.5, '0.5', 0.999, 1e-3])('expires_in %s: below the minimum of 1 s', (expiresIn) => {
    expect(() =>
      toToken({ accessToken: 'short-lived-token', expiresIn: expiresIn as number }, now, 300_000),
    ).toThrow(/expires_in .*below the minimum of 1 s/)
  })

  it('expires_in 1 is the minimum that is accepted', () => {
    expect(toToken({ accessToken: 'one-second-token', expiresIn: 1 }, now, 300_000).expiresAt).toBe(
      now + 1000,
    )
  })

  it.each([
    ['an expiresAt 999 ms away', { accessToken: 'short-lived-token', expiresAt: now + 999 }],
    ['a Date 500 ms away', { accessToken: 'short-lived-token', expiresAt: new Date(now + 500) }],
    ['a JWT exp 0.5 s away', { accessToken: jwt({ exp: (now + 500) / 1000 }) }],
  ])('%s: a lifetime under 1 s is a TokenRequestError', (_, response: TokenResponse) => {
    let thrown: unknown
    try {
      toToken(response, now, 300_000)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(TokenRequestError)
    expect((thrown as Error).message).toMatch(/1 s/)
    expectNoSecrets(thrown, [response.accessToken])
  })

  // Not an error when the JWT only shortens a stated lifetime: an issuer flooring iat leaves
  // 0.x s of a 3 s token whenever a fetch lands late in a second; refusing it would fail
  // requests for a backoff, where using it costs one fetch a little sooner.
  it('a JWT exp 0.75 s away that shortens expires_in 3: used, expiresAt is exp', () => {
    const exp = (now + 750) / 1000
    const token = toToken({ accessToken: jwt({ iat: exp - 3, exp }), expiresIn: 3 }, now, 300_000)
    expect(token.expiresAt).toBe(now + 750)
  })

  it('through TokenCache: expires_in 0.5 is refused once, nothing cached', async () => {
    const token = 'half-second-token-6f0d'
    const endpoint = await tokenEndpoint(() => ({ access_token: token, expires_in: 0.5 }))
    const tokenAgent = new Agent()
    try {
      const store = memoryStore()
      const tokens = new TokenCache({
        store,
        now: () => now,
        fetchToken: grant(endpoint, tokenAgent),
      })
      const error = await rejection(tokens.get())
      expect(error).toBeInstanceOf(TokenRequestError)
      expect((error as Error).message).toMatch(/below the minimum of 1 s/)
      expectNoSecrets(error, [token, clientSecret])
      expect(await store.get('default')).toBeUndefined()
      // Backing off: the next get() gets the same error without a request.
      await rejection(tokens.get())
      expect(endpoint.requests).toHaveLength(1)
    } finally {
      await tokenAgent.close()
      await endpoint.close()
    }
  })
})

describe("guards 'a value that is not a plausible token is a miss, not a token' (storedToken)", () => {
  const now = Date.UTC(2026, 0, 1)
  const year = 365 * 24 * 60 * 60 * 1000
  const good: Token = {
    accessToken: 'stored-token',
    tokenType: 'Bearer',
    expiresAt: now + 3_600_000,
    obtainedAt: now - 60_000,
    expiresIn: 3660,
    scope: 'readers:read',
  }

  it('returns a plausible token as it is, extra fields and all', () => {
    expect(storedToken(good, now)).toBe(good)
    expect(storedToken({ ...good, expiresAt: now + 10 * year - 60_000 }, now)).toBeDefined()
    // Another replica's clock a little ahead: obtainedAt in our near future.
    expect(storedToken({ ...good, obtainedAt: now + 5 * 60_000 }, now)).toBeDefined()
    // A JWT exp may have shortened a fetched token below 1 s: still one this package makes.
    expect(storedToken({ ...good, obtainedAt: now, expiresAt: now + 500 }, now)).toBeDefined()
    // An expired token still has a token's shape: whether it is usable is the cache's call.
    const expired = { ...good, expiresAt: now - 1 }
    expect(storedToken(expired, now)).toBe(expired)
  })

  it.each([
    ['a 1000-year expiresAt', { ...good, expiresAt: now + 1000 * year }],
    ['an expiresAt just past ten years', { ...good, expiresAt: now + 10 * year + 1 }],
    [
      'a lifetime over ten years (obtained long ago)',
      { ...good, obtainedAt: now - 20 * year, expiresAt: now + 3_600_000 },
    ],
    ['obtainedAt far in the future', { ...good, obtainedAt: now + 3_600_000 }],
    ['expiresAt not after obtainedAt', { ...good, obtainedAt: now, expiresAt: now }],
    ['expiresAt before obtainedAt', { ...good, obtainedAt: now, expiresAt: now - 1 }],
    ['expiresAt Infinity', { ...good, expiresAt: Number.POSITIVE_INFINITY }],
    ['expiresAt NaN', { ...good, expiresAt: Number.NaN }],
    ['obtainedAt NaN', { ...good, obtainedAt: Number.NaN }],
    ['expiresAt a string', { ...good, expiresAt: String(now + 3_600_000) }],
    ['no obtainedAt', { accessToken: 'a-token', tokenType: 'Bearer', expiresAt: now + 60_000 }],
    ['an empty accessToken', { ...good, accessToken: '' }],
    ['an accessToken with a space', { ...good, accessToken: 'stored token' }],
    ['an accessToken with U+2028', { ...good, accessToken: 'stored\u2028token' }],
    ['an accessToken with CR LF', { ...good, accessToken: 'stored\r\nx-injected: 1' }],
    ['an accessToken above U+007E', { ...good, accessToken: 'störed-token' }],
    ['a tokenType with a space', { ...good, tokenType: 'Bear er' }],
    ['an empty tokenType', { ...good, tokenType: '' }],
    ['a numeric accessToken', { ...good, accessToken: 12_345_678 }],
    ['null', null],
    ['a string', 'stored-token'],
    ['an array', [good]],
  ])('refuses %s', (_, value: unknown) => {
    expect(storedToken(value, now)).toBeUndefined()
  })
})

describe("guards 'a value planted in a shared store is not trusted past the caps on fetched tokens' (TokenCache)", () => {
  it('a stored token with a 1000-year expiresAt is a miss: the cache fetches its own', async () => {
    const store = memoryStore()
    const now = Date.now()
    const planted: Token = {
      accessToken: 'planted-token',
      tokenType: 'Bearer',
      obtainedAt: now,
      expiresAt: now + 1000 * 365 * 24 * 3600 * 1000,
    }
    await store.set('default', planted, 60_000)
    const source = tokenSource(() => ({ accessToken: 'fetched-token', expiresIn: 60 }))
    const tokens = new TokenCache({ store, fetchToken: source.fetchToken })
    expect((await tokens.get()).accessToken).toBe('fetched-token')
    expect(source.calls).toHaveLength(1)
  })
})

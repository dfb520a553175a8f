import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type FetchToken,
  memoryStore,
  type Token,
  TokenCache,
  type TokenCacheOptions,
  TokenRequestError,
  type TokenResponse,
  type TokenStore,
} from '../lib/index.js'
import { deferred, rejectionOf, settled, sleep, turns, until } from './support/async.js'
import { type ManualClock, manualClock, t0 } from './support/clock.js'
import { unsignedJwt as jwt } from './support/jwt.js'
import { tokenSource } from './support/token-sources.js'

/*
 * TokenCache without HTTP: fetchToken is a plain function that counts its calls,
 * and expiry runs on an injected clock (`now`), not on vitest fake timers, which
 * break undici (research/dependencies.md). Real time is used only for timeouts,
 * store timeouts and to let a slow fetch overlap other calls, in short waits.
 *
 * Where a test retries after a failure it first moves the injected clock a
 * minute on, past any backoff the cache may apply after a failed fetch.
 */

// The injected clock starts at t0 (tests/support/clock.js); `tokenSource()` is a fetchToken that
// records its calls, by default answering call n with `<key>-<n>` for 3600 s.

/**
 * Every cache here is built through this, so an option all of them need goes in one place.
 * These tests count fetches at expiry, so refresh-ahead is off unless a test turns it on
 * (tests/refresh-ahead.test.ts covers it).
 */
function makeCache(options: TokenCacheOptions): TokenCache {
  return new TokenCache({ refreshAhead: false, ...options })
}

/** An access token that must never show up in an error. */
const secret = 'secret-access-token-value'

async function tokenRequestErrorOf(promise: Promise<unknown>): Promise<TokenRequestError> {
  const error = await rejectionOf(promise)
  expect(error).toBeInstanceOf(TokenRequestError)
  return error as TokenRequestError
}

/**
 * Where `cache` renews: one millisecond before `renewAt` it still hands out `kept`, at
 * `renewAt` it fetches and hands out `renewed` (checked on both sides, so an off-by-one
 * either way fails).
 */
async function expectRenewalAt(
  cache: TokenCache,
  clock: ManualClock,
  renewAt: number,
  kept: string,
  renewed: string,
): Promise<void> {
  clock.set(renewAt - 1)
  expect((await cache.get()).accessToken).toBe(kept)
  clock.set(renewAt)
  expect((await cache.get()).accessToken).toBe(renewed)
}

type Settled<T> =
  | { status: 'fulfilled'; value: T }
  | { status: 'rejected'; reason: unknown }
  | { status: 'pending' }

/** How `promise` stands after `ms` of real time. */
async function stateAfter<T>(promise: Promise<T>, ms: number): Promise<Settled<T>> {
  const pending: Settled<T> = { status: 'pending' }
  return Promise.race([settled(promise), sleep(ms).then(() => pending)])
}

/** A TokenStore over a Map, recording calls; `delay` makes every call slow. */
function mapStore(): TokenStore & {
  entries: Map<string, Token>
  sets: Array<{ key: string; token: Token; ttlMs: number }>
} {
  const entries = new Map<string, Token>()
  const sets: Array<{ key: string; token: Token; ttlMs: number }> = []
  return {
    entries,
    sets,
    async get(key) {
      return entries.get(key)
    },
    async set(key, token, ttlMs) {
      sets.push({ key, token, ttlMs })
      entries.set(key, token)
    },
    async delete(key, ifAccessToken) {
      const current = entries.get(key)
      if (current === undefined) return false
      if (ifAccessToken !== undefined && current.accessToken !== ifAccessToken) return false
      return entries.delete(key)
    },
    async clear() {
      entries.clear()
    },
  }
}

describe('single flight', () => {
  it('1 000 concurrent get() on a cold cache make exactly one fetchToken call', async () => {
    const { fetchToken, calls } = tokenSource(async (call) => {
      await sleep(20)
      return { accessToken: `token-${call}`, expiresIn: 3600 }
    })
    const cache = makeCache({ fetchToken })
    const tokens = await Promise.all(Array.from({ length: 1_000 }, () => cache.get('k')))
    expect(calls).toHaveLength(1)
    expect(new Set(tokens).size).toBe(1)
    expect(tokens[0]?.accessToken).toBe('token-1')
    // And then it is cached.
    expect(await cache.get('k')).toBe(tokens[0])
    expect(calls).toHaveLength(1)
  })

  it('fetches two keys independently: 2 calls, and one failing does not touch the other', async () => {
    const gateA = deferred<TokenResponse>()
    const { fetchToken, calls } = tokenSource((call, { key }) =>
      key === 'a' ? gateA.promise : { accessToken: `b-${call}`, expiresIn: 3600 },
    )
    const cache = makeCache({ fetchToken })
    const a = Array.from({ length: 50 }, () => cache.get('a'))
    const b = Array.from({ length: 50 }, () => cache.get('b'))
    // b completes while a's fetch still runs.
    const bTokens = await Promise.all(b)
    expect(new Set(bTokens.map((token) => token.accessToken))).toEqual(new Set(['b-2']))
    expect(calls.map((context) => context.key).sort()).toEqual(['a', 'b'])

    const down = new TokenRequestError('a is down')
    gateA.reject(down)
    const aResults = await Promise.allSettled(a)
    expect(aResults.every((result) => result.status === 'rejected' && result.reason === down)).toBe(
      true,
    )
    expect(calls).toHaveLength(2)
    expect((await cache.get('b')).accessToken).toBe('b-2')
    expect(calls).toHaveLength(2)
  })

  it("uses the key 'default' when get() is given none", async () => {
    const { fetchToken, calls } = tokenSource()
    const cache = makeCache({ fetchToken })
    const token = await cache.get()
    expect(calls).toHaveLength(1)
    expect(calls[0]?.key).toBe('default')
    expect(calls[0]?.signal).toBeInstanceOf(AbortSignal)
    expect(calls[0]?.signal.aborted).toBe(false)
    expect(token.accessToken).toBe('default-1')
    expect(await cache.get('default')).toBe(token)
    expect(calls).toHaveLength(1)
  })
})

describe('expiry (injected clock)', () => {
  it('refetches a 3600 s token at expiresAt − 30 s (default clockSkew), not a millisecond before', async () => {
    const clock = manualClock()
    const { fetchToken, calls } = tokenSource()
    const cache = makeCache({ fetchToken, now: clock.now })
    const first = await cache.get()
    expect(first).toMatchObject({
      accessToken: 'default-1',
      tokenType: 'Bearer',
      expiresIn: 3600,
      expiresAt: t0 + 3_600_000,
      obtainedAt: t0,
    })

    clock.set(t0 + 3_570_000 - 1)
    expect(await cache.get()).toBe(first)
    expect(calls).toHaveLength(1)

    clock.set(t0 + 3_570_000)
    const second = await cache.get()
    expect(second.accessToken).toBe('default-2')
    expect(second.obtainedAt).toBe(t0 + 3_570_000)
    expect(calls).toHaveLength(2)
  })

  it('gives a 10 s token a skew of 1 s (a tenth of its lifetime): cached for 9 s', async () => {
    const clock = manualClock()
    const { fetchToken, calls } = tokenSource((call) => ({
      accessToken: `t${call}`,
      expiresIn: 10,
    }))
    const cache = makeCache({ fetchToken, now: clock.now })
    for (let at = 0; at < 9_000; at += 250) {
      clock.set(t0 + at)
      expect((await cache.get()).accessToken).toBe('t1')
    }
    clock.set(t0 + 8_999)
    expect((await cache.get()).accessToken).toBe('t1')
    expect(calls).toHaveLength(1)
    clock.set(t0 + 9_000)
    expect((await cache.get()).accessToken).toBe('t2')
    expect(calls).toHaveLength(2)
  })

  it('honours clockSkew, still capped at a tenth of the lifetime', async () => {
    const clock = manualClock()
    const { fetchToken, calls } = tokenSource((call) => ({
      accessToken: `t${call}`,
      expiresIn: call === 1 ? 3600 : 600,
    }))
    const cache = makeCache({ fetchToken, now: clock.now, clockSkew: 120_000 })
    await cache.get()
    await expectRenewalAt(cache, clock, t0 + 3_480_000, 't1', 't2') // 3600 s − 120 s
    const start = clock.now()
    await expectRenewalAt(cache, clock, start + 540_000, 't2', 't3') // 600 s − 60 s (a tenth), not − 120 s
    expect(calls).toHaveLength(3)
  })

  it('with clockSkew 0 uses a token up to its expiresAt', async () => {
    const clock = manualClock()
    const { fetchToken, calls } = tokenSource()
    const cache = makeCache({ fetchToken, now: clock.now, clockSkew: 0 })
    await cache.get()
    await expectRenewalAt(cache, clock, t0 + 3_600_000, 'default-1', 'default-2')
    expect(calls).toHaveLength(2)
  })

  // The same token source, its expiresAt given either way; a 120 s lifetime gets a 12 s skew
  // (a tenth of it), a 600 s one the default 30 s.
  it.each([
    ['takes expiresAt as epoch ms', (at: number) => at, 600_000, 570_000],
    [
      'takes expiresAt as a Date, and keeps it as epoch ms',
      (at: number) => new Date(at),
      120_000,
      108_000,
    ],
  ])('%s', async (_, expiresAt: (at: number) => number | Date, lifetime, renewAfter) => {
    const clock = manualClock()
    const { fetchToken, calls } = tokenSource((call) => ({
      accessToken: `t${call}`,
      expiresAt: expiresAt(clock.now() + lifetime),
    }))
    const cache = makeCache({ fetchToken, now: clock.now })
    const token = await cache.get()
    expect(token.expiresAt).toBe(t0 + lifetime)
    await expectRenewalAt(cache, clock, t0 + renewAfter, 't1', 't2')
    expect(calls).toHaveLength(2)
  })

  it('prefers expiresIn over expiresAt', async () => {
    const clock = manualClock()
    const { fetchToken } = tokenSource(() => ({
      accessToken: 't',
      expiresIn: 60,
      expiresAt: t0 + 3_600_000,
    }))
    const cache = makeCache({ fetchToken, now: clock.now })
    expect((await cache.get()).expiresAt).toBe(t0 + 60_000)
  })

  it("falls back to a JWT's exp claim when neither expiresIn nor expiresAt is given", async () => {
    const clock = manualClock()
    const { fetchToken, calls } = tokenSource((call) =>
      call === 1
        ? { accessToken: jwt({ sub: 'svc', exp: (t0 + 1_800_000) / 1000 }) }
        : { accessToken: `opaque-${call}`, expiresIn: 3600 },
    )
    const cache = makeCache({ fetchToken, now: clock.now })
    const token = await cache.get()
    expect(token.expiresAt).toBe(t0 + 1_800_000)
    clock.set(t0 + 1_770_000 - 1)
    expect(await cache.get()).toBe(token)
    clock.set(t0 + 1_770_000)
    expect((await cache.get()).accessToken).toBe('opaque-2')
    expect(calls).toHaveLength(2)
  })

  it('falls back to defaultLifetime, 300 000 ms by default', async () => {
    const clock = manualClock()
    const opaque = tokenSource((call) => ({ accessToken: `opaque-${call}` }))
    const cache = makeCache({ fetchToken: opaque.fetchToken, now: clock.now })
    expect((await cache.get()).expiresAt).toBe(t0 + 300_000)
    await expectRenewalAt(cache, clock, t0 + 270_000, 'opaque-1', 'opaque-2')
    expect(opaque.calls).toHaveLength(2)

    // A JWT without exp, and a custom defaultLifetime (skew: a tenth of it).
    const clock2 = manualClock()
    const noExp = tokenSource((call) => ({ accessToken: jwt({ sub: `svc-${call}` }) }))
    const cache2 = makeCache({
      fetchToken: noExp.fetchToken,
      now: clock2.now,
      defaultLifetime: 60_000,
    })
    const token = await cache2.get()
    expect(token.expiresAt).toBe(t0 + 60_000)
    clock2.set(t0 + 54_000 - 1)
    expect(await cache2.get()).toBe(token)
    clock2.set(t0 + 54_000)
    expect(await cache2.get()).not.toBe(token)
    expect(noExp.calls).toHaveLength(2)
  })

  it.each([
    ['expiresAt now', (): TokenResponse => ({ accessToken: secret, expiresAt: t0 })],
    ['expiresAt in the past', (): TokenResponse => ({ accessToken: secret, expiresAt: t0 - 1 })],
    [
      'a past Date',
      (): TokenResponse => ({ accessToken: secret, expiresAt: new Date(t0 - 60_000) }),
    ],
    ['a past JWT exp', (): TokenResponse => ({ accessToken: jwt({ exp: (t0 - 60_000) / 1000 }) })],
    ['a JWT exp of now', (): TokenResponse => ({ accessToken: jwt({ exp: t0 / 1000 }) })],
  ])(
    'rejects a token that is already expired (%s) once, without a refetch loop',
    async (_, respond) => {
      const clock = manualClock()
      const { fetchToken, calls } = tokenSource(respond)
      const store = memoryStore()
      const cache = makeCache({ fetchToken, now: clock.now, store })
      const error = await tokenRequestErrorOf(cache.get())
      expect(error.message).toMatch(/expired/)
      const { accessToken } = respond()
      expect(`${error.message} ${JSON.stringify(error)}`).not.toContain(accessToken)
      expect(calls).toHaveLength(1)
      expect(await store.get('default')).toBeUndefined()
      clock.advance(60_000)
      await tokenRequestErrorOf(cache.get())
      expect(calls).toHaveLength(2)
    },
  )

  it.each([
    ['0', 0],
    ['negative', -60],
    ["'abc'", 'abc'],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ["''", ''],
    ["'-1'", '-1'],
    ['true', true],
  ])('rejects expiresIn %s, and caches nothing', async (_, expiresIn) => {
    const clock = manualClock()
    const { fetchToken, calls } = tokenSource((call) =>
      call === 1
        ? { accessToken: secret, expiresIn: expiresIn as number }
        : { accessToken: 'good', expiresIn: 3600 },
    )
    const store = memoryStore()
    const cache = makeCache({ fetchToken, now: clock.now, store })
    const error = await tokenRequestErrorOf(cache.get())
    expect(error.message).toMatch(/expires_in/)
    expect(error.message).not.toContain(secret)
    expect(await store.get('default')).toBeUndefined()
    clock.advance(60_000)
    expect((await cache.get()).accessToken).toBe('good')
    expect(calls).toHaveLength(2)
  })

  it("accepts a numeric string expiresIn ('3600')", async () => {
    const clock = manualClock()
    const { fetchToken } = tokenSource(() => ({
      accessToken: 't',
      expiresIn: '3600' as unknown as number,
    }))
    const cache = makeCache({ fetchToken, now: clock.now })
    const token = await cache.get()
    expect(token.expiresAt).toBe(t0 + 3_600_000)
    expect(token.expiresIn).toBe(3600)
  })

  it('keeps the response: tokenType as sent, other fields under their own names', async () => {
    const { fetchToken } = tokenSource(() => ({
      accessToken: 't',
      tokenType: 'DPoP',
      expiresIn: 3600,
      scope: 'readers:read',
      id_token: 'second-token',
    }))
    const token = await makeCache({ fetchToken }).get()
    expect(token).toMatchObject({
      tokenType: 'DPoP',
      scope: 'readers:read',
      id_token: 'second-token',
    })
  })

  it.each([
    ['no accessToken', { expiresIn: 3600 }],
    ['an empty accessToken', { accessToken: '', expiresIn: 3600 }],
    ['an empty tokenType', { accessToken: 't', tokenType: '', expiresIn: 3600 }],
    ['null', null],
    ['a string', 'token'],
  ])('rejects a response with %s', async (_, response) => {
    const { fetchToken } = tokenSource(() => response as TokenResponse)
    await tokenRequestErrorOf(makeCache({ fetchToken }).get())
  })
})

describe('slidingExpiration', () => {
  it('drops a token not read for that long', async () => {
    const clock = manualClock()
    const { fetchToken, calls } = tokenSource()
    const store = memoryStore()
    const cache = makeCache({ fetchToken, now: clock.now, store, slidingExpiration: 60_000 })
    await cache.get()
    clock.advance(60_000 - 1)
    expect((await cache.get()).accessToken).toBe('default-1') // this read counts as use
    clock.advance(60_000 - 1)
    expect((await cache.get()).accessToken).toBe('default-1')
    clock.advance(60_000)
    expect((await cache.get()).accessToken).toBe('default-2')
    expect(calls).toHaveLength(2)
  })

  it('keeps a token read regularly, but never past its absolute expiry', async () => {
    const clock = manualClock()
    const { fetchToken, calls } = tokenSource()
    const cache = makeCache({ fetchToken, now: clock.now, slidingExpiration: 60_000 })
    for (let at = t0; at < t0 + 3_570_000; at += 50_000) {
      clock.set(at)
      expect((await cache.get()).accessToken).toBe('default-1')
    }
    expect(calls).toHaveLength(1)
    clock.set(t0 + 3_570_000)
    expect((await cache.get()).accessToken).toBe('default-2')
    expect(calls).toHaveLength(2)
  })
})

describe('invalidate and clear', () => {
  it('evicts only while the cached token is still the rejected one', async () => {
    const { fetchToken, calls } = tokenSource()
    const cache = makeCache({ fetchToken })
    const first = await cache.get('k')

    expect(await cache.invalidate('k', 'some-other-token')).toBe(false)
    expect(await cache.get('k')).toBe(first)
    expect(calls).toHaveLength(1)

    expect(await cache.invalidate('k', first.accessToken)).toBe(true)
    const second = await cache.get('k')
    expect(second.accessToken).toBe('k-2')
    expect(calls).toHaveLength(2)

    // A late invalidate for the first token keeps the renewed one.
    expect(await cache.invalidate('k', first.accessToken)).toBe(false)
    expect(await cache.get('k')).toBe(second)
    expect(calls).toHaveLength(2)
  })

  it('evicts whatever is cached when no token is named', async () => {
    const { fetchToken, calls } = tokenSource()
    const cache = makeCache({ fetchToken })
    expect(await cache.invalidate('k')).toBe(false) // nothing cached
    await cache.get('k')
    expect(await cache.invalidate('k')).toBe(true)
    expect((await cache.get('k')).accessToken).toBe('k-2')
    expect(calls).toHaveLength(2)
  })

  it('clear() forgets every key, in the store too', async () => {
    const { fetchToken, calls } = tokenSource()
    const store = memoryStore()
    const cache = makeCache({ fetchToken, store })
    await cache.get('a')
    await cache.get('b')
    await cache.clear()
    expect(await store.get('a')).toBeUndefined()
    expect(await store.get('b')).toBeUndefined()
    expect((await cache.get('a')).accessToken).toBe('a-3')
    expect((await cache.get('b')).accessToken).toBe('b-4')
    expect(calls).toHaveLength(4)
  })
})

describe('invalidate while a fetch runs (p-memoize 8 lands results after a delete)', () => {
  it('does not cache the token the flight brings back when it was invalidated meanwhile', async () => {
    const gate = deferred<TokenResponse>()
    const { fetchToken, calls } = tokenSource((call) =>
      call === 1 ? gate.promise : { accessToken: `fresh-${call}`, expiresIn: 3600 },
    )
    const cache = makeCache({ fetchToken })
    const waiting = cache.get('k')
    await until(() => calls.length === 1)
    // A late 401 for X (the endpoint re-issues X) arrives while the fetch runs.
    await cache.invalidate('k', 'X')
    gate.resolve({ accessToken: 'X', expiresIn: 3600 })
    expect((await waiting).accessToken).not.toBe('X')
    const next = await cache.get('k')
    expect(next.accessToken).not.toBe('X')
    expect(next.accessToken).toBe('fresh-2')
    expect(calls).toHaveLength(2)
    expect(await cache.get('k')).toBe(next)
    expect(calls).toHaveLength(2)
  })

  it('does not cache a token the flight read from the store before it was invalidated', async () => {
    const inner = mapStore()
    const storeGet = deferred<void>()
    let storeGets = 0
    const slowStore: TokenStore = {
      ...inner,
      async get(key) {
        const value = inner.entries.get(key) // read now, answer later
        storeGets++
        await storeGet.promise
        return value
      },
    }
    const clock = manualClock()
    const stale: Token = {
      accessToken: 'X',
      tokenType: 'Bearer',
      expiresAt: t0 + 3_600_000,
      obtainedAt: t0,
    }
    inner.entries.set('k', stale)
    const { fetchToken, calls } = tokenSource()
    const cache = makeCache({ fetchToken, store: slowStore, storeTimeout: 2_000, now: clock.now })

    const waiting = cache.get('k')
    await until(() => storeGets === 1)
    expect(await cache.invalidate('k', 'X')).toBe(true) // deleted from the store
    storeGet.resolve()
    const token = await waiting
    expect(token.accessToken).toBe('k-1')
    expect(calls).toHaveLength(1)
    expect(await cache.get('k')).toBe(token)
    expect(calls).toHaveLength(1)
    expect(inner.entries.get('k')?.accessToken).toBe('k-1')
  })

  it('does not cache a token read from the store before an unconditional invalidate or clear', async () => {
    for (const forget of ['invalidate', 'clear'] as const) {
      const inner = mapStore()
      const storeGet = deferred<void>()
      let storeGets = 0
      const slowStore: TokenStore = {
        ...inner,
        async get(key) {
          const value = inner.entries.get(key)
          storeGets++
          await storeGet.promise
          return value
        },
      }
      const clock = manualClock()
      inner.entries.set('k', {
        accessToken: 'X',
        tokenType: 'Bearer',
        expiresAt: t0 + 3_600_000,
        obtainedAt: t0,
      })
      const { fetchToken, calls } = tokenSource()
      const cache = makeCache({ fetchToken, store: slowStore, storeTimeout: 2_000, now: clock.now })

      const waiting = cache.get('k')
      await until(() => storeGets === 1)
      if (forget === 'invalidate') await cache.invalidate('k')
      else await cache.clear()
      storeGet.resolve()
      await waiting
      const next = await cache.get('k')
      expect(next.accessToken, forget).toBe('k-1')
      expect(calls, forget).toHaveLength(1)
    }
  })
})

describe('invalidate while a fetch runs, without naming a token', () => {
  it.each(['invalidate', 'clear'] as const)(
    'serves the fetched token to its waiters but does not cache it (%s)',
    async (forget) => {
      const gate = deferred<TokenResponse>()
      const { fetchToken, calls } = tokenSource((call) =>
        call === 1 ? gate.promise : { accessToken: `after-${call}`, expiresIn: 3600 },
      )
      const store = memoryStore()
      const cache = makeCache({ fetchToken, store })
      const waiting = cache.get('k')
      await until(() => calls.length === 1)
      if (forget === 'invalidate') expect(await cache.invalidate('k')).toBe(false)
      else await cache.clear()
      gate.resolve({ accessToken: 'before', expiresIn: 3600 })
      expect((await waiting).accessToken).toBe('before')
      expect(await store.get('k')).toBeUndefined()
      expect((await cache.get('k')).accessToken).toBe('after-2')
      expect(calls).toHaveLength(2)
    },
  )
})

describe('signal', () => {
  it('detaches only the aborted caller; the shared fetch goes on for the others', async () => {
    const gate = deferred<TokenResponse>()
    const { fetchToken, calls } = tokenSource(() => gate.promise)
    const cache = makeCache({ fetchToken })
    const victim = new AbortController()
    const others = Array.from({ length: 9 }, () => new AbortController())
    const aborted = cache.get('k', { signal: victim.signal })
    const waiting = others.map((controller) => cache.get('k', { signal: controller.signal }))
    await until(() => calls.length === 1)

    const reason = new Error('caller gave up')
    victim.abort(reason)
    // At once, while the fetch is still running.
    const victimState = await stateAfter(aborted, 50)
    expect(victimState).toEqual({ status: 'rejected', reason })
    if (victimState.status === 'rejected') expect(victimState.reason).toBe(reason)
    expect((await stateAfter(Promise.race(waiting), 10)).status).toBe('pending')
    expect(calls[0]?.signal.aborted).toBe(false)

    gate.resolve({ accessToken: 'shared', expiresIn: 3600 })
    const tokens = await Promise.all(waiting)
    expect(tokens.map((token) => token.accessToken)).toEqual(Array(9).fill('shared'))
    expect(calls).toHaveLength(1)
  })

  it('finishes and caches the fetch even when every caller detached', async () => {
    const gate = deferred<TokenResponse>()
    const { fetchToken, calls } = tokenSource(() => gate.promise)
    const cache = makeCache({ fetchToken })
    const controller = new AbortController()
    const aborted = cache.get('k', { signal: controller.signal })
    await until(() => calls.length === 1)
    controller.abort()
    await expect(aborted).rejects.toBe(controller.signal.reason)
    gate.resolve({ accessToken: 'kept', expiresIn: 3600 })
    await sleep(10) // no waiter is left: had the fetch been dropped, the next get would fetch again
    expect((await cache.get('k')).accessToken).toBe('kept')
    expect(calls).toHaveLength(1)
  })

  it('rejects with the reason of an already-aborted signal without starting a fetch', async () => {
    const { fetchToken, calls } = tokenSource()
    const cache = makeCache({ fetchToken })
    const reason = new Error('already gone')
    await expect(cache.get('k', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    expect(calls).toHaveLength(0)
  })
})

describe('timeout', () => {
  it('rejects with a TokenRequestError after `timeout` ms, aborts the fetch, and tries again next time', async () => {
    const clock = manualClock()
    const { fetchToken, calls } = tokenSource((call) =>
      call === 1
        ? new Promise<TokenResponse>(() => {})
        : { accessToken: 'second', expiresIn: 3600 },
    )
    const cache = makeCache({ fetchToken, timeout: 100, now: clock.now })
    const started = performance.now()
    const error = await tokenRequestErrorOf(cache.get())
    const elapsed = performance.now() - started
    expect(error.message).toMatch(/timed out after 100 ms/)
    expect(elapsed).toBeGreaterThanOrEqual(90)
    expect(elapsed).toBeLessThan(1_000)
    const signal = calls[0]?.signal
    expect(signal?.aborted).toBe(true)
    expect(signal?.reason).toBe(error)

    clock.advance(60_000)
    expect((await cache.get()).accessToken).toBe('second')
    expect(calls).toHaveLength(2)
  })
})

describe('failed fetches', () => {
  it('shares one rejection with every waiter, and does not cache it', async () => {
    const clock = manualClock()
    const failure = new TokenRequestError('invalid_client', {
      status: 401,
      error: 'invalid_client',
    })
    const { fetchToken, calls } = tokenSource(async (call) => {
      await sleep(10)
      if (call === 1) throw failure
      return { accessToken: 'after-failure', expiresIn: 3600 }
    })
    const cache = makeCache({ fetchToken, now: clock.now })
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => cache.get('k')))
    expect(
      results.every((result) => result.status === 'rejected' && result.reason === failure),
    ).toBe(true)
    expect(calls).toHaveLength(1)

    clock.advance(60_000)
    expect((await cache.get('k')).accessToken).toBe('after-failure')
    expect(calls).toHaveLength(2)
  })

  it('wraps anything else fetchToken throws in a TokenRequestError with the cause', async () => {
    const boom = new Error('socket hang up')
    for (const thrower of [
      async (): Promise<TokenResponse> => {
        throw boom
      },
      (): Promise<TokenResponse> => {
        throw boom // synchronously
      },
    ]) {
      let count = 0
      const cache = makeCache({
        fetchToken: () => {
          count++
          return thrower()
        },
      })
      const results = await Promise.allSettled([cache.get(), cache.get(), cache.get()])
      const reasons = results.map((result) =>
        result.status === 'rejected' ? result.reason : result,
      )
      const [first] = reasons
      expect(first).toBeInstanceOf(TokenRequestError)
      expect((first as TokenRequestError).cause).toBe(boom)
      expect(reasons.every((reason) => reason === first)).toBe(true)
      expect(count).toBe(1)
    }
  })
})

describe('stores', () => {
  it('counts a store that throws as a miss', async () => {
    const { fetchToken, calls } = tokenSource()
    for (const broken of [
      {
        get: () => Promise.reject(new Error('down')),
        set: () => Promise.reject(new Error('down')),
        delete: () => Promise.reject(new Error('down')),
        clear: () => Promise.reject(new Error('down')),
      },
      {
        get: (): Promise<Token | undefined> => {
          throw new Error('down')
        },
        set: (): Promise<void> => {
          throw new Error('down')
        },
        delete: (): Promise<boolean> => {
          throw new Error('down')
        },
      },
    ] satisfies TokenStore[]) {
      const before = calls.length
      const cache = makeCache({ fetchToken, store: broken })
      const token = await cache.get('k')
      expect(calls).toHaveLength(before + 1)
      expect(await cache.get('k')).toBe(token) // kept in this process
      expect(calls).toHaveLength(before + 1)
      expect(await cache.invalidate('k', token.accessToken)).toBe(true)
      await cache.clear()
    }
  })

  it('counts a store call slower than storeTimeout as a miss, and answers quickly', async () => {
    const { fetchToken, calls } = tokenSource()
    const never = <T>(): Promise<T> => new Promise<T>(() => {})
    const hanging: TokenStore = { get: never, set: never, delete: never, clear: never }
    const cache = makeCache({ fetchToken, store: hanging, storeTimeout: 50 })
    let started = performance.now()
    const token = await cache.get('k')
    expect(performance.now() - started).toBeLessThan(500)
    expect(calls).toHaveLength(1)
    started = performance.now()
    expect(await cache.invalidate('k', token.accessToken)).toBe(true)
    await cache.clear()
    expect(performance.now() - started).toBeLessThan(500)
  })

  it('uses a token already in a shared store without fetching', async () => {
    const clock = manualClock()
    const shared = memoryStore()
    const first = tokenSource((call) => ({ accessToken: `one-${call}`, expiresIn: 3600 }))
    const second = tokenSource((call) => ({ accessToken: `two-${call}`, expiresIn: 3600 }))
    const a = makeCache({ fetchToken: first.fetchToken, store: shared, now: clock.now })
    const b = makeCache({ fetchToken: second.fetchToken, store: shared, now: clock.now })
    const token = await a.get('k')
    expect(await b.get('k')).toEqual(token)
    expect(first.calls).toHaveLength(1)
    expect(second.calls).toHaveLength(0)
  })

  it('does not use a stored token that is no longer usable, or is not a token', async () => {
    const clock = manualClock()
    const store = mapStore()
    store.entries.set('old', {
      accessToken: 'old',
      tokenType: 'Bearer',
      obtainedAt: t0 - 3_590_000,
      expiresAt: t0 + 10_000, // inside the 30 s skew
    })
    store.entries.set('junk', { accessToken: 'junk' } as Token)
    const { fetchToken, calls } = tokenSource()
    const cache = makeCache({ fetchToken, store, now: clock.now })
    expect((await cache.get('old')).accessToken).toBe('old-1')
    expect((await cache.get('junk')).accessToken).toBe('junk-2')
    expect(calls).toHaveLength(2)
  })

  it('stores a fresh token with a ttl equal to its remaining lifetime', async () => {
    const clock = manualClock()
    const store = mapStore()
    const { fetchToken } = tokenSource((call) =>
      call === 1
        ? { accessToken: 'in', expiresIn: 3600 }
        : { accessToken: 'at', expiresAt: clock.now() + 90_000 },
    )
    const cache = makeCache({ fetchToken, store, now: clock.now })
    const first = await cache.get('a')
    const second = await cache.get('b')
    expect(store.sets).toEqual([
      { key: 'a', token: first, ttlMs: 3_600_000 },
      { key: 'b', token: second, ttlMs: 90_000 },
    ])
  })
})

describe('options', () => {
  it('needs a fetchToken function', () => {
    expect(() => new TokenCache(undefined as unknown as TokenCacheOptions)).toThrow(TypeError)
    expect(() => new TokenCache({} as TokenCacheOptions)).toThrow(TypeError)
    expect(() => new TokenCache({ fetchToken: 'x' as unknown as FetchToken })).toThrow(TypeError)
  })

  it.each([
    { clockSkew: -1 },
    { clockSkew: Number.NaN },
    { clockSkew: Number.POSITIVE_INFINITY },
    { clockSkew: '30' as unknown as number },
    { timeout: 0 },
    { timeout: -100 },
    { timeout: Number.NaN },
    { storeTimeout: 0 },
    { defaultLifetime: 0 },
    { defaultLifetime: Number.POSITIVE_INFINITY },
    { slidingExpiration: 0 },
    { slidingExpiration: -1 },
    { minRenewalInterval: -1 },
  ])('throws RangeError for %o', (bad) => {
    const { fetchToken } = tokenSource()
    expect(() => new TokenCache({ fetchToken, ...bad })).toThrow(RangeError)
  })

  it('accepts zero where zero makes sense', () => {
    const { fetchToken } = tokenSource()
    expect(() => new TokenCache({ fetchToken, clockSkew: 0, minRenewalInterval: 0 })).not.toThrow()
  })
})

describe('property: usable tokens only, one fetch in flight per key', () => {
  type Key = 'a' | 'b'
  type Call =
    | { kind: 'get'; key: Key }
    | { kind: 'invalidate'; key: Key; which: 'current' | 'stale' | 'any' }
  type Step =
    | { kind: 'burst'; calls: Call[] }
    | { kind: 'advance'; ms: number }
    | { kind: 'toEdge'; key: Key; delta: number }

  const key = fc.constantFrom<Key>('a', 'b')
  const call: fc.Arbitrary<Call> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('get' as const), key }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('invalidate' as const),
        key,
        which: fc.constantFrom('current' as const, 'stale' as const, 'any' as const),
      }),
    },
  )
  const step: fc.Arbitrary<Step> = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('burst' as const),
        calls: fc.array(call, { minLength: 1, maxLength: 6 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('advance' as const),
        ms: fc.integer({ min: 0, max: 8_000_000 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('toEdge' as const),
        key,
        delta: fc.integer({ min: -2, max: 2 }),
      }),
    },
  )
  /** What fetchToken answers, in turn: lifetimes in several shapes, all valid. */
  const lifetime: fc.Arbitrary<(now: number, accessToken: string) => TokenResponse> = fc.oneof(
    fc
      .integer({ min: 1, max: 7_200 })
      .map((s) => (_: number, accessToken: string) => ({ accessToken, expiresIn: s })),
    fc.integer({ min: 1, max: 7_200 }).map((s) => (_: number, accessToken: string) => ({
      accessToken,
      expiresIn: String(s) as unknown as number,
    })),
    fc
      .integer({ min: 1_000, max: 7_200_000 }) // lifetimes under 1 s are refused (issue #10)
      .map((ms) => (now: number, accessToken: string) => ({ accessToken, expiresAt: now + ms })),
    fc.constant((_: number, accessToken: string) => ({ accessToken })),
  )

  const skewOf = (token: Token): number =>
    Math.min(30_000, (token.expiresAt - token.obtainedAt) / 10)

  it('holds for arbitrary sequences of get, invalidate and clock moves', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { maxLength: 25 }),
        fc.array(lifetime, { minLength: 1, maxLength: 8 }),
        async (steps, lifetimes) => {
          const clock = manualClock()
          const inFlight = new Map<string, number>()
          let maxInFlight = 0
          let fetches = 0
          const fetchToken: FetchToken = async ({ key }) => {
            const n = ++fetches
            const running = (inFlight.get(key) ?? 0) + 1
            inFlight.set(key, running)
            maxInFlight = Math.max(maxInFlight, running)
            try {
              await turns()
              const respond = lifetimes[n % lifetimes.length] ?? lifetimes[0]
              if (respond === undefined) throw new Error('no lifetimes')
              return respond(clock.now(), `${key}-${n}`)
            } finally {
              inFlight.set(key, (inFlight.get(key) ?? 1) - 1)
            }
          }
          const cache = makeCache({ fetchToken, now: clock.now })
          const latest = new Map<Key, Token>()
          const returned = new Map<Key, Token[]>()
          const rejected = new Set<string>()

          for (const current of steps) {
            if (current.kind === 'advance') {
              clock.advance(current.ms)
              continue
            }
            if (current.kind === 'toEdge') {
              const token = latest.get(current.key)
              if (token !== undefined) {
                const edge = token.expiresAt - skewOf(token) + current.delta
                clock.set(Math.max(clock.now(), Math.ceil(edge)))
              }
              continue
            }
            await Promise.all(
              current.calls.map(async (c) => {
                if (c.kind === 'invalidate') {
                  const seen = returned.get(c.key) ?? []
                  const name =
                    c.which === 'any'
                      ? undefined
                      : c.which === 'current'
                        ? latest.get(c.key)?.accessToken
                        : seen.at(-2)?.accessToken
                  await cache.invalidate(c.key, name)
                  if (name !== undefined) rejected.add(name)
                  return
                }
                const rejectedBefore = new Set(rejected)
                const token = await cache.get(c.key)
                // Usable at the moment it is handed out.
                expect(clock.now()).toBeLessThan(token.expiresAt - skewOf(token))
                expect(token.accessToken.startsWith(`${c.key}-`)).toBe(true)
                expect(rejectedBefore.has(token.accessToken)).toBe(false)
                latest.set(c.key, token)
                returned.set(c.key, [...(returned.get(c.key) ?? []), token])
              }),
            )
          }
          expect(maxInFlight).toBeLessThanOrEqual(1)
        },
      ),
      { numRuns: 200 },
    )
  })
})

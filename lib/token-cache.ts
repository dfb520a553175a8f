import pMemoize from 'p-memoize'
import { type BackoffOptions, FailureBackoff } from './backoff.js'
import { channels, summarize } from './diagnostics.js'
import { TokenRequestError } from './errors.js'
import { fingerprint } from './fingerprint.js'
import { BoundedTtlMap, isProcessLocal, localCapacityFor, memoryStore } from './stores/memory.js'
import { skewOf, storedToken, toToken } from './token.js'
import { runAsTokenFetch } from './token-fetch-context.js'
import type { FetchToken, Token, TokenStore } from './types.js'

/** Options of `new TokenCache()`. */
export interface TokenCacheOptions {
  /** Gets a fresh token for a key: `clientCredentials(...)` or your own. */
  fetchToken: FetchToken
  /** Where tokens are kept; default `memoryStore()`. */
  store?: TokenStore
  /** Ms a token is treated as expired before `expiresAt`; default 30 000, never more than a tenth of its lifetime. */
  clockSkew?: number
  /**
   * Fraction of a token's lifetime after which a request starts one background
   * refresh while the current token keeps being served; default 0.8, moved
   * earlier when the token endpoint is slow. `false`: refresh only on expiry.
   */
  refreshAhead?: number | false
  /** Ms: drop a token not used for this long (never kept past `expiresAt`). Off by default. */
  slidingExpiration?: number
  /** Ms a token lives when neither `expires_in`, `expiresAt` nor a JWT `exp` says; default 300 000. */
  defaultLifetime?: number
  /** Ms one token fetch may take; default 10 000. */
  timeout?: number
  /** Ms one store call may take before it counts as a miss; default 250. */
  storeTimeout?: number
  /** Ms between two forced renewals of a key after a 401; default 5 000. */
  minRenewalInterval?: number
  /** Spacing of fetches after failures (1 s doubling to 30 s, ±20 %); `false` to retry at once. */
  backoff?: BackoffOptions | false
  /** Clock in epoch ms, for tests; default `Date.now`. */
  now?: () => number
}

/** This process's view of a key's current token. */
interface Entry {
  readonly token: Token
  /** Epoch ms (cache clock) from which the token counts as expired: expiresAt − skew. */
  readonly usableUntil: number
  /** Epoch ms (cache clock) from which a read starts a background refresh. */
  refreshAt: number
  /** Epoch ms (cache clock) of the last read, for sliding expiration. */
  lastUsed: number
  /** A background refresh for this entry is running. */
  refreshing: boolean
  /** The token's fingerprint, computed when first needed. */
  fingerprint: string | undefined
}

/*
 * What the interceptor needs beyond the public API. Module functions bound in a
 * static block reach the private methods without widening TokenCache's surface.
 */
let peek: (cache: TokenCache, key: string) => Token | undefined
let mayRenew: (cache: TokenCache, key: string, rejected: string) => boolean
let renew: (cache: TokenCache, key: string, rejected: string) => Promise<Token>

/** @internal Synchronous read of a usable cached token: the interceptor's hot path. */
export function peekToken(cache: TokenCache, key: string): Token | undefined {
  return peek(cache, key)
}

/** @internal Whether a 401 for `rejected` may be retried with a renewed token (rate limit). */
export function mayRenewRejected(cache: TokenCache, key: string, rejected: string): boolean {
  return mayRenew(cache, key, rejected)
}

/** @internal The token to retry with after `rejected` got a 401. */
export function renewRejected(cache: TokenCache, key: string, rejected: string): Promise<Token> {
  return renew(cache, key, rejected)
}

const defaultKey = 'default'
/** The background refresh starts at least this many observed fetch latencies before expiry. */
const latencyMargin = 3
/** A store lock outlives the fetch it guards by this much, unless the store says otherwise. */
const lockSlack = 5_000
/** Marks a store call that failed or timed out, as opposed to one that found nothing. */
const storeFailed: unique symbol = Symbol('store failed')

/**
 * Caches access tokens per key until they expire, and fetches each key's token
 * once however many callers want it at the same moment (single flight). Past
 * the refresh-ahead point a read still gets the cached token at once and starts
 * one background refresh, so nobody waits on the token endpoint while a usable
 * token exists.
 */
export class TokenCache {
  readonly #fetchToken: FetchToken
  readonly #store: TokenStore
  /** The store is this process's memory: what is dropped locally is dropped there too. */
  readonly #storeIsLocal: boolean
  readonly #local: BoundedTtlMap<Entry>
  readonly #clockSkew: number
  readonly #refreshAhead: number | false
  readonly #slidingExpiration: number | undefined
  readonly #defaultLifetime: number
  readonly #timeout: number
  readonly #storeTimeout: number
  readonly #minRenewalInterval: number
  readonly #backoff: FailureBackoff | undefined
  readonly #now: () => number
  /**
   * The token last rejected (401 or invalidate) per key, and the rejection's number:
   * a copy read from the store, or one a fetch begun before the rejection brings back,
   * must not land again. A fetch begun after it may bring the same token back (many
   * sources repeat a token until it expires): that is the source's answer, and kept.
   */
  readonly #rejected = new Map<string, { readonly accessToken: string; readonly at: number }>()
  /** Rejections so far, numbering them. */
  #rejections = 0
  /** When each key was last renewed because of a 401. */
  readonly #lastForcedRenewal = new Map<string, number>()
  /** Keys whose token is being renewed after a 401: a 401 meanwhile retries with what it brings. */
  readonly #renewing = new Set<string>()
  /**
   * Counts `invalidate(key)` calls without a token, and `clear()` calls. A load that
   * began before one of them must not cache what it read or fetched (p-memoize 8
   * writes an in-flight result after a delete): the caller asked to forget it.
   * One count for all keys keeps it small; a forget elsewhere costs a fetch at most.
   */
  #forgets = 0
  /** Smoothed duration of token fetches (ms), for the refresh-ahead margin. */
  #latency = 0
  readonly #load: (key: string) => Promise<Token>

  static {
    peek = (cache, key) => cache.#peek(key)
    mayRenew = (cache, key, rejected) => cache.#mayRenew(key, rejected)
    renew = (cache, key, rejected) => cache.#renewRejected(key, rejected)
  }

  constructor(options: TokenCacheOptions) {
    if (typeof options?.fetchToken !== 'function') {
      throw new TypeError('TokenCache needs a fetchToken function, e.g. clientCredentials({...})')
    }
    this.#fetchToken = options.fetchToken
    this.#store = options.store ?? memoryStore()
    this.#storeIsLocal = isProcessLocal(this.#store)
    this.#local = new BoundedTtlMap(localCapacityFor(this.#store))
    this.#clockSkew = nonNegative('clockSkew', options.clockSkew, 30_000)
    this.#refreshAhead = fraction('refreshAhead', options.refreshAhead, 0.8)
    this.#slidingExpiration =
      options.slidingExpiration === undefined
        ? undefined
        : positive('slidingExpiration', options.slidingExpiration, 0)
    this.#defaultLifetime = positive('defaultLifetime', options.defaultLifetime, 300_000)
    this.#timeout = positive('timeout', options.timeout, 10_000)
    this.#storeTimeout = positive('storeTimeout', options.storeTimeout, 250)
    this.#minRenewalInterval = nonNegative('minRenewalInterval', options.minRenewalInterval, 5_000)
    this.#backoff = options.backoff === false ? undefined : new FailureBackoff(options.backoff)
    this.#now = options.now ?? Date.now
    // p-memoize is the single-flight primitive: concurrent calls for one key share
    // one promise; a rejection is shared and not cached (cache: false — we keep
    // tokens ourselves, with their own deadlines).
    this.#load = pMemoize((key: string) => this.#loadUncached(key), { cache: false })
  }

  /**
   * The token for `key` (default `'default'`): the cached one while usable, else
   * a fresh one, fetched once for all concurrent callers. `signal` detaches this
   * caller only; the shared fetch goes on for the others, bounded by `timeout`.
   */
  get(
    key: string = defaultKey,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<Token> {
    const cached = this.#peek(key)
    if (cached !== undefined) return Promise.resolve(cached)
    const { signal } = options
    if (signal === undefined) return this.#load(key)
    if (signal.aborted) return Promise.reject(signal.reason)
    return detach(this.#load(key), signal)
  }

  /**
   * Forget the token for `key` — only if it is still `rejectedAccessToken`, when
   * given, so a late 401 never throws away a token someone just renewed.
   * Resolves true if a token was evicted.
   */
  async invalidate(key: string, rejectedAccessToken?: string): Promise<boolean> {
    let evicted = false
    const entry = this.#local.get(key)
    if (
      entry !== undefined &&
      (rejectedAccessToken === undefined || entry.token.accessToken === rejectedAccessToken)
    ) {
      this.#local.delete(key)
      evicted = true
    }
    // A fetch in flight may still bring this very token back (read from the store
    // before this delete, or re-issued): remember it so it does not land.
    if (rejectedAccessToken !== undefined) {
      setBounded(this.#rejected, key, { accessToken: rejectedAccessToken, at: ++this.#rejections })
    } else {
      this.#forgets++
    }
    const deleted = await this.#storeCall(() => this.#store.delete(key, rejectedAccessToken))
    evicted ||= deleted === true
    if (channels.invalidate.hasSubscribers) {
      channels.invalidate.publish(
        rejectedAccessToken === undefined
          ? { key, evicted }
          : { key, evicted, fingerprint: fingerprint(rejectedAccessToken) },
      )
    }
    return evicted
  }

  /** Forget every token (and every key's failure backoff). */
  async clear(): Promise<void> {
    this.#forgets++
    this.#local.clear()
    this.#rejected.clear()
    this.#lastForcedRenewal.clear()
    this.#backoff?.clear()
    await this.#storeCall(async () => this.#store.clear?.())
  }

  /** The hot path: a usable cached token, synchronously, or undefined. */
  #peek(key: string): Token | undefined {
    // No clock check in the map: usableUntil, checked below, comes before its deadline.
    const entry = this.#local.peek(key)
    if (entry === undefined) return this.#miss(key, 'empty')
    const now = this.#now()
    if (now >= entry.usableUntil) return this.#miss(key, 'expired')
    if (this.#slidingExpiration !== undefined) {
      if (now - entry.lastUsed >= this.#slidingExpiration) {
        this.#dropUnused(key, entry)
        return this.#miss(key, 'unused')
      }
      entry.lastUsed = now
    }
    if (now >= entry.refreshAt && !entry.refreshing) this.#refreshInBackground(key, entry, now)
    if (channels.cacheHit.hasSubscribers) {
      channels.cacheHit.publish({ key, fingerprint: fingerprintOf(entry) })
    }
    return entry.token
  }

  #miss(key: string, reason: 'empty' | 'expired' | 'unused'): undefined {
    if (channels.cacheMiss.hasSubscribers) channels.cacheMiss.publish({ key, reason })
    return undefined
  }

  /** The current usable token, without side effects (no events, no refresh). */
  #current(key: string): Token | undefined {
    const entry = this.#local.get(key)
    return entry !== undefined && this.#now() < entry.usableUntil ? entry.token : undefined
  }

  /**
   * One background refresh while the current token keeps serving. If it fails,
   * the next try waits for the key's backoff; callers see an error only once the
   * token is no longer usable.
   */
  #refreshInBackground(key: string, entry: Entry, now: number): void {
    entry.refreshing = true
    if (channels.refreshAhead.hasSubscribers) {
      channels.refreshAhead.publish({
        key,
        fingerprint: fingerprintOf(entry),
        remainingMs: entry.usableUntil - now,
      })
    }
    this.#load(key).then(
      () => {
        entry.refreshing = false
      },
      () => {
        entry.refreshing = false
        entry.refreshAt = this.#backoff?.until(key) ?? this.#now()
      },
    )
  }

  /**
   * Whether a 401 for `rejected` may be retried with another token.
   * Forced renewals are rate-limited per key, so an API that answers 401 to
   * everything cannot turn request traffic into token-endpoint traffic: if the
   * rejected token is still current and the key was renewed inside the window,
   * the 401 goes to the caller.
   */
  #mayRenew(key: string, rejected: string): boolean {
    const current = this.#current(key)
    // Someone renewed already: retry with that token, no fetch.
    if (current !== undefined && current.accessToken !== rejected) return true
    // A renewal is under way: retry with what it brings, no fetch of its own.
    if (current === undefined && this.#renewing.has(key)) return true
    // Otherwise a retry means a forced renewal, cached token or not: at most one per window.
    const last = this.#lastForcedRenewal.get(key)
    return last === undefined || this.#now() - last >= this.#minRenewalInterval
  }

  /**
   * The token to retry with after `rejected` got a 401: the current one
   * if someone renewed already, the renewal in flight, or a new one.
   */
  async #renewRejected(key: string, rejected: string): Promise<Token> {
    const current = this.#current(key)
    if (current !== undefined && current.accessToken !== rejected) return current
    const last = this.#lastForcedRenewal.get(key)
    if (
      current === undefined &&
      last !== undefined &&
      this.#now() - last < this.#minRenewalInterval
    ) {
      return this.get(key) // renewed a moment ago: share that fetch
    }
    setBounded(this.#lastForcedRenewal, key, this.#now())
    this.#renewing.add(key)
    try {
      await this.invalidate(key, rejected)
      return await this.get(key)
    } finally {
      this.#renewing.delete(key)
    }
  }

  async #loadUncached(key: string): Promise<Token> {
    let forgets = this.#forgets
    const stored = await this.#fromStore(key)
    if (stored !== undefined && this.#forgets === forgets) {
      this.#remember(key, stored)
      return stored
    }
    const blocked = this.#backoff?.blocked(key, this.#now())
    if (blocked !== undefined) throw blocked
    const lock = await this.#lockOrWait(key)
    if (typeof lock !== 'function' && lock !== undefined) {
      this.#remember(key, lock) // another process fetched it meanwhile
      return lock
    }
    // The lock is held until the store has the token (or there is none to store).
    let written: Promise<unknown> = Promise.resolve()
    try {
      forgets = this.#forgets // a fetch begun now comes after any forget so far
      const rejections = this.#rejections
      let token = await this.#fetch(key)
      const rejected = this.#rejected.get(key)
      if (rejected?.accessToken === token.accessToken && rejected.at > rejections) {
        // Rejected while this fetch ran, and it brought that token back (it began too
        // early to know): ask once more, and keep whatever a fetch begun after says.
        token = await this.#fetch(key)
      }
      // Invalidated (without a token) or cleared while this fetch ran: serve it, do not cache it.
      if (this.#forgets !== forgets) return token
      this.#remember(key, token)
      // Callers need not wait for the store.
      written = this.#storeCall(() => this.#store.set(key, token, token.expiresAt - this.#now()))
      return token
    } finally {
      if (lock !== undefined) void written.then(() => this.#storeCall(lock))
    }
  }

  /** A usable token from the store that is not due for refresh, or undefined. */
  async #fromStore(key: string): Promise<Token | undefined> {
    // A store is shared and may hold anything: only a plausible token counts.
    const stored = storedToken(await this.#storeCall(() => this.#store.get(key)), this.#now())
    if (stored === undefined || this.#rejected.get(key)?.accessToken === stored.accessToken) {
      return undefined
    }
    const now = this.#now()
    const usableUntil = stored.expiresAt - skewOf(stored, this.#clockSkew)
    return now < this.#refreshPoint(stored, usableUntil) ? stored : undefined
  }

  /**
   * Distributed single flight, for stores with a lock: take the key's lock (a
   * release function), or wait for the holder's token to appear in the store
   * (the token). undefined: no lock to be had (no lock support, the store is
   * down, or the holder never delivered) — fetch without one.
   */
  async #lockOrWait(key: string): Promise<(() => Promise<void>) | Token | undefined> {
    const { lock } = this.#store
    if (lock === undefined) return undefined
    const lockTtl = this.#timeout + lockSlack
    // A lock squatted by a holder that died lives for the store's own ttl when it has
    // one: wait about that long for its token, not always timeout + slack.
    const giveUpAt = Date.now() + Math.min(lockTtl, this.#store.lockTtl ?? lockTtl)
    for (let delay = 25; ; delay = Math.min(delay * 2, 250)) {
      const release = await this.#storeCall(() => lock.call(this.#store, key, lockTtl), storeFailed)
      if (typeof release === 'function') return release
      if (release === storeFailed || Date.now() >= giveUpAt) return undefined
      await new Promise((resolve) => setTimeout(resolve, delay))
      const token = await this.#fromStore(key)
      if (token !== undefined) return token
    }
  }

  async #fetch(key: string): Promise<Token> {
    if (channels.fetchStart.hasSubscribers) {
      channels.fetchStart.publish({ key, reason: this.#fetchReason(key) })
    }
    const started = performance.now()
    const controller = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new TokenRequestError(
          `Token request for key "${key}" timed out after ${this.#timeout} ms`,
        )
        controller.abort(error)
        reject(error)
      }, this.#timeout)
    })
    try {
      // The race keeps the timeout even for a fetchToken that ignores its signal.
      const response = await Promise.race([
        runAsTokenFetch(() => this.#fetchToken({ key, signal: controller.signal })),
        timedOut,
      ])
      const token = toToken(response, this.#now(), this.#defaultLifetime)
      const durationMs = performance.now() - started
      this.#latency = this.#latency === 0 ? durationMs : 0.7 * this.#latency + 0.3 * durationMs
      this.#backoff?.succeeded(key)
      if (channels.fetchSuccess.hasSubscribers) {
        channels.fetchSuccess.publish({
          key,
          durationMs,
          fingerprint: fingerprint(token.accessToken),
          expiresAt: token.expiresAt,
          lifetimeMs: token.expiresAt - token.obtainedAt,
        })
      }
      return token
    } catch (caught) {
      const error =
        caught instanceof TokenRequestError
          ? caught
          : new TokenRequestError(`fetchToken for key "${key}" failed`, { cause: caught })
      const durationMs = performance.now() - started
      if (channels.fetchError.hasSubscribers) {
        channels.fetchError.publish({ key, durationMs, error: summarize(error) })
      }
      if (this.#backoff !== undefined) {
        const { delay, count } = this.#backoff.failed(key, error, this.#now())
        if (channels.backoff.hasSubscribers) {
          channels.backoff.publish({
            key,
            delayMs: delay,
            failures: count,
            error: summarize(error),
          })
        }
      }
      throw error
    } finally {
      clearTimeout(timer)
    }
  }

  /** Why a fetch for `key` starts now, for diagnostics. */
  #fetchReason(key: string): 'miss' | 'refresh-ahead' | 'renewal' {
    if (this.#renewing.has(key)) return 'renewal'
    return this.#current(key) !== undefined ? 'refresh-ahead' : 'miss'
  }

  #remember(key: string, token: Token): void {
    const now = this.#now()
    const usableUntil = token.expiresAt - skewOf(token, this.#clockSkew)
    const entry: Entry = {
      token,
      usableUntil,
      refreshAt: this.#refreshPoint(token, usableUntil),
      lastUsed: now,
      refreshing: false,
      fingerprint: undefined,
    }
    this.#local.set(key, entry, token.expiresAt - now)
    // Whatever lands here is not a rejected copy (see #fromStore, #loadUncached).
    this.#rejected.delete(key)
  }

  /**
   * When a read starts a background refresh: `refreshAhead` of the lifetime, but
   * early enough for a few observed fetch latencies to fit before the token stops
   * being usable (a 2 s token from a 300 ms endpoint still rolls over smoothly).
   */
  #refreshPoint(token: Token, usableUntil: number): number {
    if (this.#refreshAhead === false) return usableUntil
    const byFraction = token.obtainedAt + (token.expiresAt - token.obtainedAt) * this.#refreshAhead
    const byLatency = usableUntil - latencyMargin * this.#latency
    return Math.max(token.obtainedAt, Math.min(byFraction, byLatency))
  }

  #dropUnused(key: string, entry: Entry): void {
    this.#local.delete(key)
    // Sliding expiration is about this process's use: a shared store keeps the
    // token for the others; the process-local default store drops it too.
    if (this.#storeIsLocal) {
      void this.#storeCall(() => this.#store.delete(key, entry.token.accessToken))
    }
  }

  /** A store call that fails or is slower than `storeTimeout` counts as a miss (`failed`). */
  async #storeCall<T, F = undefined>(call: () => Promise<T>, failed?: F): Promise<T | F> {
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        call(),
        new Promise<F>((resolve) => {
          timer = setTimeout(() => resolve(failed as F), this.#storeTimeout)
        }),
      ])
    } catch {
      return failed as F
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Most keys the per-key bookkeeping maps remember; the oldest entries go first. */
const maxTrackedKeys = 10_000

/** `map.set`, keeping the map to `maxTrackedKeys` (a per-tenant key must not grow it forever). */
function setBounded<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > maxTrackedKeys) map.delete(map.keys().next().value as string)
}

function fingerprintOf(entry: Entry): string {
  entry.fingerprint ??= fingerprint(entry.token.accessToken)
  return entry.fingerprint
}

function detach<T>(shared: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    shared.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a non-negative number of ms, got ${String(value)}`)
  }
  return value
}

function fraction(
  name: string,
  value: number | false | undefined,
  fallback: number,
): number | false {
  if (value === undefined) return fallback
  if (value === false) return false
  if (typeof value !== 'number' || !(value > 0 && value < 1)) {
    throw new RangeError(
      `${name} must be a fraction between 0 and 1, or false; got ${String(value)}`,
    )
  }
  return value
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number of ms, got ${String(value)}`)
  }
  return value
}

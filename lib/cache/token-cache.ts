import pMemoize from 'p-memoize'
import { channels } from '../diagnostics.js'
import { DPoPKey } from '../dpop/signer.js'
import { fingerprint } from '../fingerprint.js'
import { isProcessLocal, localCapacityFor, memoryStore } from '../stores/memory.js'
import { skewOf } from '../token.js'
import type { Token, TokenStore } from '../types.js'
import { BoundedMap } from './bounded-map.js'
import { type FetchReason, TokenFetcher } from './fetcher.js'
import { registerInternals } from './internal.js'
import { TokenLoader } from './loader.js'
import { fraction, nonNegative, positive, type TokenCacheOptions } from './options.js'
import { RenewalPolicy } from './renewal.js'

export type { TokenCacheOptions } from './options.js'

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

const defaultKey = 'default'
/** The background refresh starts at least this many observed fetch latencies before expiry. */
const latencyMargin = 3

/**
 * Caches access tokens per key until they expire, and fetches each key's token
 * once however many callers want it at the same moment (single flight). Past
 * the refresh-ahead point a read still gets the cached token at once and starts
 * one background refresh, so nobody waits on the token endpoint while a usable
 * token exists.
 */
export class TokenCache {
  readonly #store: TokenStore
  /** The store is this process's memory: what is dropped locally is dropped there too. */
  readonly #storeIsLocal: boolean
  readonly #local: BoundedMap<Entry>
  readonly #clockSkew: number
  readonly #refreshAhead: number | false
  readonly #slidingExpiration: number | undefined
  readonly #now: () => number
  readonly #dpop: DPoPKey | undefined
  readonly #fetcher: TokenFetcher
  readonly #loader: TokenLoader
  readonly #renewal: RenewalPolicy
  /** The single flight: concurrent loads of a key share one promise. */
  readonly #load: (key: string) => Promise<Token>

  constructor(options: TokenCacheOptions) {
    if (typeof options?.fetchToken !== 'function') {
      throw new TypeError('TokenCache needs a fetchToken function, e.g. clientCredentials({...})')
    }
    this.#store = options.store ?? memoryStore()
    this.#storeIsLocal = isProcessLocal(this.#store)
    this.#local = new BoundedMap(localCapacityFor(this.#store))
    this.#clockSkew = nonNegative('clockSkew', options.clockSkew, 30_000)
    this.#refreshAhead = fraction('refreshAhead', options.refreshAhead, 0.8)
    this.#slidingExpiration =
      options.slidingExpiration === undefined
        ? undefined
        : positive('slidingExpiration', options.slidingExpiration, 0)
    this.#now = options.now ?? Date.now
    this.#dpop = options.dpop === undefined ? undefined : new DPoPKey(options.dpop)
    const timeout = positive('timeout', options.timeout, 10_000)
    this.#fetcher = new TokenFetcher({
      fetchToken: options.fetchToken,
      timeout,
      defaultLifetime: positive('defaultLifetime', options.defaultLifetime, 300_000),
      backoff: options.backoff,
      dpop: this.#dpop,
      now: this.#now,
    })
    const storeTimeout = positive('storeTimeout', options.storeTimeout, 250)
    this.#loader = new TokenLoader(
      { store: this.#store, fetcher: this.#fetcher, timeout, storeTimeout, now: this.#now },
      {
        remember: (key, token) => this.#remember(key, token),
        isFresh: (token) =>
          this.#fits(token) && this.#now() < this.#refreshPoint(token, this.#usableUntil(token)),
        fetchReason: (key) => this.#fetchReason(key),
      },
    )
    const minRenewalInterval = nonNegative('minRenewalInterval', options.minRenewalInterval, 5_000)
    this.#renewal = new RenewalPolicy(minRenewalInterval, this.#now)
    // p-memoize is the single-flight primitive: concurrent calls for one key share one
    // promise; a rejection is shared and not cached. `cache: false` because tokens are
    // kept here, with deadlines of their own.
    this.#load = pMemoize((key: string) => this.#loader.load(key), { cache: false })
    const renewalHost = {
      current: (key: string) => this.#current(key),
      invalidate: (key: string, rejected: string) => this.invalidate(key, rejected),
      get: (key: string) => this.get(key),
    }
    registerInternals(this, {
      dpop: this.#dpop,
      peek: (key) => this.#peek(key),
      load: (key) => this.#load(key),
      mayRetryAfter401: (key, rejected) =>
        this.#renewal.mayRetry(key, rejected, this.#current(key)),
      tokenAfter401: (key, rejected) => this.#renewal.tokenAfter(key, rejected, renewalHost),
    })
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
    // A load in flight may still bring this very token back: it must not land.
    if (rejectedAccessToken !== undefined) this.#loader.reject(key, rejectedAccessToken)
    else this.#loader.forget()
    const deleted = await this.#loader.storeCall('delete', key, () =>
      this.#store.delete(key, rejectedAccessToken),
    )
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

  /** Forget every token (and every key's failure backoff and 401 renewal record). */
  async clear(): Promise<void> {
    this.#loader.forget()
    this.#local.clear()
    this.#loader.clearRejections()
    this.#renewal.clear()
    this.#fetcher.clearBackoff()
    await this.#loader.storeCall('clear', undefined, async () => this.#store.clear?.())
  }

  /** A usable cached token, synchronously, or undefined: the hot path. */
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
        entry.refreshAt = this.#fetcher.retryAt(key) ?? this.#now()
      },
    )
  }

  /** Why a fetch for `key` starts now, for diagnostics. */
  #fetchReason(key: string): FetchReason {
    if (this.#renewal.isRenewing(key)) return 'renewal'
    return this.#current(key) !== undefined ? 'refresh-ahead' : 'miss'
  }

  #remember(key: string, token: Token): void {
    const now = this.#now()
    const usableUntil = this.#usableUntil(token)
    const entry: Entry = {
      token,
      usableUntil,
      refreshAt: this.#refreshPoint(token, usableUntil),
      lastUsed: now,
      refreshing: false,
      fingerprint: undefined,
    }
    this.#local.set(key, entry, token.expiresAt - now)
  }

  /**
   * Whether a token read from a shared store can be used here: one bound to a DPoP key
   * only with that key (replicas with another key fetch their own), an unbound one only
   * while DPoP is not configured or not required.
   */
  #fits(token: Token): boolean {
    const dpop = this.#dpop
    if (token.dpopThumbprint !== undefined || token.tokenType.toLowerCase() === 'dpop') {
      return dpop !== undefined && token.dpopThumbprint === dpop.thumbprint
    }
    return dpop === undefined || !dpop.required
  }

  #usableUntil(token: Token): number {
    return token.expiresAt - skewOf(token, this.#clockSkew)
  }

  /**
   * When a read starts a background refresh: `refreshAhead` of the lifetime, but
   * early enough for a few observed fetch latencies to fit before the token stops
   * being usable (a 2 s token from a 300 ms endpoint still rolls over smoothly).
   */
  #refreshPoint(token: Token, usableUntil: number): number {
    if (this.#refreshAhead === false) return usableUntil
    const byFraction = token.obtainedAt + (token.expiresAt - token.obtainedAt) * this.#refreshAhead
    const byLatency = usableUntil - latencyMargin * this.#fetcher.latency
    return Math.max(token.obtainedAt, Math.min(byFraction, byLatency))
  }

  #dropUnused(key: string, entry: Entry): void {
    this.#local.delete(key)
    // Sliding expiration is about this process's use: a shared store keeps the
    // token for the others; the process-local default store drops it too.
    if (this.#storeIsLocal) {
      void this.#loader.storeCall('delete', key, () =>
        this.#store.delete(key, entry.token.accessToken),
      )
    }
  }
}

function fingerprintOf(entry: Entry): string {
  entry.fingerprint ??= fingerprint(entry.token.accessToken)
  return entry.fingerprint
}

/** `shared`, from the point of view of one caller who may leave early through `signal`. */
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

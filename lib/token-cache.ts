import pMemoize from 'p-memoize'
import { TokenRequestError } from './errors.js'
import { jwtExpiry } from './jwt.js'
import { BoundedExpiryMap, memoryStore } from './stores/memory.js'
import { runAsTokenFetch } from './token-fetch-context.js'
import type { FetchToken, Token, TokenResponse, TokenStore } from './types.js'

/** Options of `new TokenCache()`. */
export interface TokenCacheOptions {
  /** Gets a fresh token for a key: `clientCredentials(...)` or your own. */
  fetchToken: FetchToken
  /** Where tokens are kept; default `memoryStore()`. */
  store?: TokenStore
  /** Ms a token is treated as expired before `expiresAt`; default 30 000, never more than a tenth of its lifetime. */
  clockSkew?: number
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
  /** Clock in epoch ms, for tests; default `Date.now`. */
  now?: () => number
}

/** This process's view of a key's current token. */
interface Entry {
  readonly token: Token
  /** Epoch ms (cache clock) from which the token counts as expired: expiresAt − skew. */
  readonly usableUntil: number
  /** Epoch ms (cache clock) of the last read, for sliding expiration. */
  lastUsed: number
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
const maxLifetimeSeconds = 10 * 365 * 24 * 60 * 60

/**
 * Caches access tokens per key until they expire, and fetches each key's token
 * once however many callers want it at the same moment (single flight).
 */
export class TokenCache {
  readonly #fetchToken: FetchToken
  readonly #store: TokenStore
  readonly #local: BoundedExpiryMap<Entry>
  readonly #clockSkew: number
  readonly #slidingExpiration: number | undefined
  readonly #defaultLifetime: number
  readonly #timeout: number
  readonly #storeTimeout: number
  readonly #minRenewalInterval: number
  readonly #now: () => number
  /** The token last rejected (401 or invalidate) per key: it must not land again. */
  readonly #rejected = new Map<string, string>()
  /** When each key was last renewed because of a 401. */
  readonly #lastForcedRenewal = new Map<string, number>()
  /**
   * Counts `invalidate(key)` calls without a token, and `clear()` calls. A load that
   * began before one of them must not cache what it read or fetched (p-memoize 8
   * writes an in-flight result after a delete): the caller asked to forget it.
   * One count for all keys keeps it small; a forget elsewhere costs a fetch at most.
   */
  #forgets = 0
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
    this.#local = new BoundedExpiryMap()
    this.#clockSkew = nonNegative('clockSkew', options.clockSkew, 30_000)
    this.#slidingExpiration =
      options.slidingExpiration === undefined
        ? undefined
        : positive('slidingExpiration', options.slidingExpiration, 0)
    this.#defaultLifetime = positive('defaultLifetime', options.defaultLifetime, 300_000)
    this.#timeout = positive('timeout', options.timeout, 10_000)
    this.#storeTimeout = positive('storeTimeout', options.storeTimeout, 250)
    this.#minRenewalInterval = nonNegative('minRenewalInterval', options.minRenewalInterval, 5_000)
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
    if (rejectedAccessToken !== undefined) this.#rejected.set(key, rejectedAccessToken)
    else this.#forgets++
    const deletedInStore = await this.#storeCall(() => this.#store.delete(key, rejectedAccessToken))
    return evicted || deletedInStore === true
  }

  /** Forget every token. */
  async clear(): Promise<void> {
    this.#forgets++
    this.#local.clear()
    this.#rejected.clear()
    this.#lastForcedRenewal.clear()
    await this.#storeCall(async () => this.#store.clear?.())
  }

  #peek(key: string): Token | undefined {
    const entry = this.#local.get(key)
    if (entry === undefined) return undefined
    const now = this.#now()
    if (now >= entry.usableUntil) return undefined
    if (this.#slidingExpiration !== undefined) {
      if (now - entry.lastUsed >= this.#slidingExpiration) {
        this.#dropUnused(key, entry)
        return undefined
      }
      entry.lastUsed = now
    }
    return entry.token
  }

  /**
   * Whether a 401 for `rejected` may be retried with another token.
   * Forced renewals are rate-limited per key, so an API that answers 401 to
   * everything cannot turn request traffic into token-endpoint traffic: if the
   * rejected token is still current and the key was renewed inside the window,
   * the 401 goes to the caller.
   */
  #mayRenew(key: string, rejected: string): boolean {
    const current = this.#peek(key)
    if (current === undefined || current.accessToken !== rejected) return true
    const last = this.#lastForcedRenewal.get(key)
    return last === undefined || this.#now() - last >= this.#minRenewalInterval
  }

  /**
   * The token to retry with after `rejected` got a 401: the current one
   * if someone renewed already, the renewal in flight, or a new one.
   */
  async #renewRejected(key: string, rejected: string): Promise<Token> {
    const current = this.#peek(key)
    if (current !== undefined && current.accessToken !== rejected) return current
    const last = this.#lastForcedRenewal.get(key)
    if (
      current === undefined &&
      last !== undefined &&
      this.#now() - last < this.#minRenewalInterval
    ) {
      return this.get(key) // renewed a moment ago: share that fetch
    }
    this.#lastForcedRenewal.set(key, this.#now())
    await this.invalidate(key, rejected)
    return this.get(key)
  }

  async #loadUncached(key: string): Promise<Token> {
    let forgets = this.#forgets
    const stored = await this.#storeCall(() => this.#store.get(key))
    if (
      stored !== undefined &&
      this.#forgets === forgets &&
      this.#usable(stored) &&
      this.#rejected.get(key) !== stored.accessToken
    ) {
      this.#remember(key, stored)
      return stored
    }
    forgets = this.#forgets // a fetch begun now comes after any forget so far
    let token = await this.#fetch(key)
    if (this.#rejected.get(key) === token.accessToken) {
      // Invalidated while this fetch ran, and it brought back the rejected token:
      // do not let it land; ask once more.
      token = await this.#fetch(key)
      if (this.#rejected.get(key) === token.accessToken) return token // the endpoint insists; do not cache
    }
    // Invalidated (without a token) or cleared while this fetch ran: serve it, do not cache it.
    if (this.#forgets !== forgets) return token
    this.#remember(key, token)
    await this.#storeCall(() => this.#store.set(key, token, token.expiresAt - this.#now()))
    return token
  }

  async #fetch(key: string): Promise<Token> {
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
      return toToken(response, this.#now(), this.#defaultLifetime)
    } catch (error) {
      if (error instanceof TokenRequestError) throw error
      throw new TokenRequestError(`fetchToken for key "${key}" failed`, { cause: error })
    } finally {
      clearTimeout(timer)
    }
  }

  #remember(key: string, token: Token): void {
    const now = this.#now()
    const usableUntil = token.expiresAt - skewOf(token, this.#clockSkew)
    this.#local.set(key, { token, usableUntil, lastUsed: now }, token.expiresAt - now)
    if (this.#rejected.get(key) !== token.accessToken) this.#rejected.delete(key)
  }

  #usable(token: Token): boolean {
    return isToken(token) && this.#now() < token.expiresAt - skewOf(token, this.#clockSkew)
  }

  #dropUnused(key: string, entry: Entry): void {
    this.#local.delete(key)
    void this.#storeCall(() => this.#store.delete(key, entry.token.accessToken))
  }

  /** A store call that fails or is slower than `storeTimeout` counts as a miss. */
  async #storeCall<T>(call: () => Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        call(),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(resolve, this.#storeTimeout, undefined)
        }),
      ])
    } catch {
      return undefined
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Skew: `clockSkew`, but never more than a tenth of the token's lifetime. */
function skewOf(token: Token, clockSkew: number): number {
  return Math.min(clockSkew, (token.expiresAt - token.obtainedAt) / 10)
}

/** Turns what a token source returned into a cacheable Token, or throws TokenRequestError. */
export function toToken(response: TokenResponse, now: number, defaultLifetime: number): Token {
  if (typeof response !== 'object' || response === null) {
    throw new TokenRequestError('fetchToken returned no token response object')
  }
  const { accessToken, tokenType, expiresIn, expiresAt } = response
  if (typeof accessToken !== 'string' || accessToken.length === 0) {
    throw new TokenRequestError('Token response has no access_token (or it is empty)')
  }
  if (tokenType !== undefined && (typeof tokenType !== 'string' || tokenType.length === 0)) {
    throw new TokenRequestError('Token response has a token_type that is not a non-empty string')
  }
  let expiry: number
  let lifetimeSeconds: number | undefined
  if (expiresIn !== undefined && expiresIn !== null) {
    lifetimeSeconds = secondsOf(expiresIn)
    expiry = now + lifetimeSeconds * 1000
  } else if (expiresAt !== undefined && expiresAt !== null) {
    expiry = expiresAt instanceof Date ? expiresAt.getTime() : Number(expiresAt)
    if (!Number.isFinite(expiry)) {
      throw new TokenRequestError('Token response has an expiresAt that is not a date')
    }
    if (expiry <= now) throw new TokenRequestError('Token response is already expired (expiresAt)')
  } else {
    const exp = jwtExpiry(accessToken)
    if (exp !== undefined && exp <= now) {
      throw new TokenRequestError('Token is already expired (its JWT exp claim is in the past)')
    }
    expiry = exp ?? now + defaultLifetime
  }
  const token: Token = {
    ...response,
    accessToken,
    tokenType: tokenType ?? 'Bearer',
    expiresAt: expiry,
    obtainedAt: now,
  }
  if (lifetimeSeconds !== undefined) token.expiresIn = lifetimeSeconds
  return token
}

/** `expires_in` (RFC 6749 §5.1): a positive number of seconds, as a number or numeric string. */
function secondsOf(value: unknown): number {
  const seconds =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value)
        ? Number(value)
        : Number.NaN
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new TokenRequestError(
      `Token response has expires_in ${describe(value)}: it must be a positive number of seconds`,
    )
  }
  if (seconds > maxLifetimeSeconds) {
    throw new TokenRequestError(
      `Token response has expires_in ${describe(value)}: more than ten years is not a plausible lifetime`,
    )
  }
  return seconds
}

function describe(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value)
  return text.length > 40 ? `${text.slice(0, 40)}…` : text
}

function isToken(value: unknown): value is Token {
  if (typeof value !== 'object' || value === null) return false
  const token = value as Partial<Token>
  return (
    typeof token.accessToken === 'string' &&
    token.accessToken.length > 0 &&
    typeof token.tokenType === 'string' &&
    typeof token.expiresAt === 'number' &&
    typeof token.obtainedAt === 'number'
  )
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

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number of ms, got ${String(value)}`)
  }
  return value
}

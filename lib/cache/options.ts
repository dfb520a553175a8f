import type { DPoPOptions } from '../dpop/signer.js'
import type { FetchToken, TokenStore } from '../types.js'
import type { BackoffOptions } from './backoff.js'

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
  /**
   * Sender-constrained tokens (RFC 9449): token requests and every request to a matched
   * origin carry a proof signed with this key. Off by default.
   */
  dpop?: DPoPOptions
  /** Clock in epoch ms, for tests; default `Date.now`. */
  now?: () => number
}

export function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a non-negative number of ms, got ${String(value)}`)
  }
  return value
}

export function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number of ms, got ${String(value)}`)
  }
  return value
}

export function fraction(
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

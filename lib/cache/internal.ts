import type { DPoPKey } from '../dpop/signer.js'
import type { Token } from '../types.js'

/**
 * What the request handler needs of a TokenCache beyond its public API. Kept in
 * this internal module (not exported from the package): a cache registers its
 * internals when it is built, and an interceptor looks them up once, when it is
 * built, so the hot path makes a plain call.
 */
export interface CacheInternals {
  /** The DPoP key proofs are signed with, when the cache has one. */
  readonly dpop: DPoPKey | undefined
  /** A usable cached token, synchronously, or undefined: the hot path. */
  peek(key: string): Token | undefined
  /** The key's token, loaded: for a caller whose `peek` just missed (no second miss event). */
  load(key: string): Promise<Token>
  /** Whether a 401 for `rejected` may be retried (the renewal rate limit). */
  mayRetryAfter401(key: string, rejected: string): boolean
  /** The token to retry with after a 401 for `rejected`. */
  tokenAfter401(key: string, rejected: string): Promise<Token>
}

const registry = new WeakMap<object, CacheInternals>()

export function registerInternals(cache: object, internals: CacheInternals): void {
  registry.set(cache, internals)
}

/** The internals of a TokenCache; a TypeError for anything else. */
export function internalsOf(cache: object): CacheInternals {
  const internals = registry.get(cache)
  if (internals === undefined) {
    throw new TypeError('`tokens` must be a TokenCache (new TokenCache({ fetchToken, ... }))')
  }
  return internals
}

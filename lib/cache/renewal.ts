import type { Token } from '../types.js'
import { BoundedMap } from './bounded-map.js'

/** What the renewal policy needs of the cache it works for. */
export interface RenewalHost {
  /** The key's current usable token, without side effects. */
  current(key: string): Token | undefined
  invalidate(key: string, rejected: string): Promise<boolean>
  get(key: string): Promise<Token>
}

/**
 * The 401 policy. A 401 retried with a token someone already renewed, or with the
 * renewal under way, costs no fetch. Any other retry means a forced renewal, and
 * those are rate-limited per key — one per `minRenewalInterval`, whatever the
 * source returns (many hand back the same token until it expires) and whether or
 * not a token is cached — so an API that answers 401 to everything cannot turn
 * request traffic into token-endpoint traffic.
 */
export class RenewalPolicy {
  readonly #minInterval: number
  readonly #now: () => number
  /** When each key was last renewed because of a 401. */
  readonly #lastRenewal = new BoundedMap<number>()
  /** Keys being renewed after a 401 right now. */
  readonly #renewing = new Set<string>()

  constructor(minInterval: number, now: () => number) {
    this.#minInterval = minInterval
    this.#now = now
  }

  /** Whether a fetch for `key` now is a renewal after a 401 (for diagnostics). */
  isRenewing(key: string): boolean {
    return this.#renewing.has(key)
  }

  /** Whether a 401 for `rejected` may be retried, given the key's `current` token. */
  mayRetry(key: string, rejected: string, current: Token | undefined): boolean {
    if (current !== undefined && current.accessToken !== rejected) return true
    if (current === undefined && this.#renewing.has(key)) return true
    return !this.#renewedRecently(key)
  }

  /**
   * The token to retry with after `rejected` got a 401: the current one if someone
   * renewed already, the renewal in flight, or a new one (a forced renewal).
   */
  async tokenAfter(key: string, rejected: string, cache: RenewalHost): Promise<Token> {
    const current = cache.current(key)
    if (current !== undefined && current.accessToken !== rejected) return current
    if (current === undefined && this.#renewedRecently(key)) return cache.get(key)
    this.#lastRenewal.set(key, this.#now())
    this.#renewing.add(key)
    try {
      await cache.invalidate(key, rejected)
      return await cache.get(key)
    } finally {
      this.#renewing.delete(key)
    }
  }

  clear(): void {
    this.#lastRenewal.clear()
  }

  #renewedRecently(key: string): boolean {
    const last = this.#lastRenewal.get(key)
    return last !== undefined && this.#now() - last < this.#minInterval
  }
}

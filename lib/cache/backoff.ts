import type { TokenRequestError } from '../errors.js'
import { BoundedMap } from './bounded-map.js'

/** How failed token fetches of a key are spaced. */
export interface BackoffOptions {
  /** Ms after the first failure; default 1 000. It doubles with each failure after that. */
  initialDelay?: number
  /** Most ms between attempts; default 30 000. */
  maxDelay?: number
  /** Most ms a `Retry-After` is honoured for; default 300 000 (5 min). */
  maxRetryAfter?: number
  /** Random fraction added or taken off each delay; default 0.2 (±20 %). */
  jitter?: number
}

interface Failures {
  count: number
  /** Epoch ms (cache clock) before which no new fetch is made. */
  until: number
  error: TokenRequestError
}

/**
 * Per-key failure backoff, so a dead token endpoint is not hammered: after a
 * failed fetch the next is spaced exponentially with jitter, capped; a
 * `Retry-After` on 429/503 (RFC 9110 §10.2.3) is honoured, capped. Callers
 * inside the window get the last error at once. A success resets the key.
 */
export class FailureBackoff {
  readonly #initialDelay: number
  readonly #maxDelay: number
  readonly #maxRetryAfter: number
  readonly #jitter: number
  /** The failing keys, at most 10 000 (the oldest forgotten first). */
  readonly #failures = new BoundedMap<Failures>()

  constructor(options: BackoffOptions = {}) {
    this.#initialDelay = options.initialDelay ?? 1_000
    this.#maxDelay = options.maxDelay ?? 30_000
    this.#maxRetryAfter = options.maxRetryAfter ?? 300_000
    this.#jitter = options.jitter ?? 0.2
  }

  /** The last error while `key` is backing off at `now`, else undefined. */
  blocked(key: string, now: number): TokenRequestError | undefined {
    const failures = this.#failures.get(key)
    return failures !== undefined && now < failures.until ? failures.error : undefined
  }

  /** Epoch ms before which `key` should not be fetched again, or undefined. */
  until(key: string): number | undefined {
    return this.#failures.get(key)?.until
  }

  /** Records a failure; returns the delay (ms) before the next attempt. */
  failed(key: string, error: TokenRequestError, now: number): { delay: number; count: number } {
    const count = (this.#failures.get(key)?.count ?? 0) + 1
    const exponential = Math.min(this.#maxDelay, this.#initialDelay * 2 ** (count - 1))
    let delay = exponential * (1 + this.#jitter * (2 * Math.random() - 1))
    if (error.retryAfter !== undefined && (error.status === 429 || error.status === 503)) {
      delay = Math.max(delay, Math.min(error.retryAfter * 1000, this.#maxRetryAfter))
    }
    delay = Math.round(delay)
    this.#failures.set(key, { count, until: now + delay, error })
    return { delay, count }
  }

  succeeded(key: string): void {
    this.#failures.delete(key)
  }

  clear(): void {
    this.#failures.clear()
  }
}

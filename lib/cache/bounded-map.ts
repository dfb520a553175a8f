/** Most keys any per-key map of this package holds unless told otherwise. */
export const defaultMaxKeys = 10_000

interface Slot<V> {
  readonly value: V
  /** Epoch ms (Date.now) after which the value is gone; Infinity for never. */
  readonly deadline: number
}

/** Expired entries looked at (from the oldest write on) each time one is written. */
const sweepPerWrite = 2

/**
 * The one bounded map: a plain Map in write order, an optional deadline per entry,
 * no timers. A read past an entry's deadline finds nothing and drops it; each write
 * also drops expired entries from the oldest end; beyond `maxEntries` the least
 * recently written goes. So memory is bounded by `maxEntries` however many keys pass
 * through (a per-tenant `key` cannot grow it), and nothing keeps the process — or a
 * dropped cache — alive.
 *
 * Used for tokens (`memoryStore()`, TokenCache's process-local view) and for every
 * per-key record (backoff, 401 renewals, rejected tokens).
 */
export class BoundedMap<V> {
  readonly #maxEntries: number
  readonly #entries = new Map<string, Slot<V>>()

  constructor(maxEntries: number = defaultMaxKeys) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${String(maxEntries)}`)
    }
    this.#maxEntries = maxEntries
  }

  get size(): number {
    return this.#entries.size
  }

  get maxEntries(): number {
    return this.#maxEntries
  }

  /** The live value for `key`. */
  get(key: string): V | undefined {
    const slot = this.#entries.get(key)
    if (slot === undefined) return undefined
    if (slot.deadline === Number.POSITIVE_INFINITY || Date.now() < slot.deadline) return slot.value
    this.#entries.delete(key)
    return undefined
  }

  /**
   * The value for `key` without looking at the clock: for a caller that checks a
   * stricter deadline of its own (TokenCache's hot path; Date.now costs).
   */
  peek(key: string): V | undefined {
    return this.#entries.get(key)?.value
  }

  /** Keeps `value` for `ttlMs` (default: until pushed out); a ttl ≤ 0 deletes. */
  set(key: string, value: V, ttlMs: number = Number.POSITIVE_INFINITY): void {
    this.#entries.delete(key) // a rewrite moves the key to the newest end
    if (!(ttlMs > 0)) return
    const now = Date.now()
    this.#entries.set(key, { value, deadline: now + ttlMs })
    let swept = 0
    for (const [oldestKey, oldest] of this.#entries) {
      const over = this.#entries.size > this.#maxEntries
      if (!over && (swept++ >= sweepPerWrite || oldest.deadline > now)) break
      this.#entries.delete(oldestKey)
    }
  }

  delete(key: string): boolean {
    return this.#entries.delete(key)
  }

  clear(): void {
    this.#entries.clear()
  }
}

import type { Token, TokenStore } from '../types.js'

/** Options of `memoryStore()`. */
export interface MemoryStoreOptions {
  /** Most keys kept at once; the least recently written goes first. Default 10 000. */
  maxEntries?: number
}

interface Slot<V> {
  readonly value: V
  /** Epoch ms (Date.now) after which the value is gone. */
  readonly deadline: number
}

const defaultMaxEntries = 10_000

/** Expired entries looked at (from the oldest write on) each time one is written. */
const sweepPerWrite = 2

/**
 * A bounded in-process map with a deadline per entry: a plain Map in write order,
 * no timers. A read past an entry's deadline finds nothing and drops it; each
 * write also drops expired entries from the oldest end; beyond `maxEntries` the
 * least recently written goes. So memory is bounded by `maxEntries` however many
 * keys pass through, and nothing keeps the process (or a dropped cache) alive.
 *
 * Not expiry-map: its one cleaner timer deletes a rewritten key early
 * (SamVerschueren/expiry-map#6), and the Map iterator that timer keeps paused
 * holds every table the map outgrows, so heap grew with the number of writes,
 * not of entries (bench/results.md: +88 MiB for 100 000 keys). Both are shown in
 * tests/memory-store.test.ts.
 */
export class BoundedTtlMap<V> {
  readonly #maxEntries: number
  readonly #entries = new Map<string, Slot<V>>()

  constructor(maxEntries: number = defaultMaxEntries) {
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

  /** The live value for `key`, synchronously. */
  get(key: string): V | undefined {
    const slot = this.#entries.get(key)
    if (slot === undefined) return undefined
    if (Date.now() < slot.deadline) return slot.value
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

  set(key: string, value: V, ttlMs: number): void {
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

class MemoryStore implements TokenStore {
  readonly #map: BoundedTtlMap<Token>

  get maxEntries(): number {
    return this.#map.maxEntries
  }

  constructor(options: MemoryStoreOptions) {
    this.#map = new BoundedTtlMap(options.maxEntries ?? defaultMaxEntries)
  }

  async get(key: string): Promise<Token | undefined> {
    return this.#map.get(key)
  }

  async set(key: string, token: Token, ttlMs: number): Promise<void> {
    this.#map.set(key, token, ttlMs)
  }

  async delete(key: string, ifAccessToken?: string): Promise<boolean> {
    if (ifAccessToken !== undefined && this.#map.get(key)?.accessToken !== ifAccessToken) {
      return false
    }
    return this.#map.delete(key)
  }

  async clear(): Promise<void> {
    this.#map.clear()
  }
}

/** @internal Whether `store` is this process's memory (a `memoryStore()`), not shared. */
export function isProcessLocal(store: TokenStore): boolean {
  return store instanceof MemoryStore
}

/**
 * @internal How many keys TokenCache's process-local view may hold in front of
 * `store`: a `memoryStore()`'s own `maxEntries`, so that bound holds for both.
 */
export function localCapacityFor(store: TokenStore): number {
  return store instanceof MemoryStore ? store.maxEntries : defaultMaxEntries
}

/** The default `TokenStore`: this process's memory, bounded by `maxEntries`. */
export function memoryStore(options: MemoryStoreOptions = {}): TokenStore {
  return new MemoryStore(options)
}

import { BoundedMap, defaultMaxKeys } from '../cache/bounded-map.js'
import type { Token, TokenStore } from '../types.js'

/** Options of `memoryStore()`. */
export interface MemoryStoreOptions {
  /** Most keys kept at once; the least recently written goes first. Default 10 000. */
  maxEntries?: number
}

/*
 * Not expiry-map: its one cleaner timer deletes a rewritten key early
 * (SamVerschueren/expiry-map#6), and the Map iterator that timer keeps paused holds
 * every table the map outgrows, so heap grew with the number of writes, not of
 * entries. Both are shown in tests/memory-store.test.ts.
 */
class MemoryStore implements TokenStore {
  readonly #map: BoundedMap<Token>

  get maxEntries(): number {
    return this.#map.maxEntries
  }

  constructor(options: MemoryStoreOptions) {
    this.#map = new BoundedMap(options.maxEntries ?? defaultMaxKeys)
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
  return store instanceof MemoryStore ? store.maxEntries : defaultMaxKeys
}

/** The default `TokenStore`: this process's memory, bounded by `maxEntries`, no timers. */
export function memoryStore(options: MemoryStoreOptions = {}): TokenStore {
  return new MemoryStore(options)
}

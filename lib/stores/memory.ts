import ExpiryMap from 'expiry-map'
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

/**
 * A bounded in-process map with a deadline per entry, on expiry-map.
 *
 * expiry-map frees memory with one timer per map and has a bug
 * (SamVerschueren/expiry-map#6): when a key is written again, a timer set up for
 * the old write can delete the new value long before its time. Two guards:
 * each write goes under a fresh internal key, so no key is ever overwritten and a
 * stale timer can only remove a value nobody reads any more; and the deadline
 * kept in each slot, not expiry-map's timer, decides what is still there.
 */
export class BoundedExpiryMap<V> {
  readonly #maxEntries: number
  /** key → internal key of its current slot, in least-recently-written order. */
  readonly #current = new Map<string, string>()
  readonly #slots = new ExpiryMap<string, Slot<V>>(Number.MAX_SAFE_INTEGER)
  #writes = 0

  constructor(maxEntries: number = defaultMaxEntries) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${String(maxEntries)}`)
    }
    this.#maxEntries = maxEntries
  }

  get size(): number {
    return this.#current.size
  }

  /** The live value for `key`, synchronously. */
  get(key: string): V | undefined {
    const internal = this.#current.get(key)
    if (internal === undefined) return undefined
    const slot = this.#slots.get(internal)
    if (slot !== undefined && Date.now() < slot.deadline) return slot.value
    this.#remove(key, internal)
    return undefined
  }

  /**
   * The value for `key` without looking at the clock: for a caller that checks a
   * stricter deadline of its own (TokenCache's hot path; Date.now costs).
   */
  peek(key: string): V | undefined {
    const internal = this.#current.get(key)
    return internal === undefined ? undefined : this.#slots.get(internal)?.value
  }

  set(key: string, value: V, ttlMs: number): void {
    const previous = this.#current.get(key)
    if (previous !== undefined) this.#remove(key, previous)
    if (!(ttlMs > 0)) return
    const internal = `${key}\u0000${(this.#writes++).toString(36)}`
    // expiry-map's age is per map; setting it before each write makes it per entry.
    // It only frees memory: the slot's deadline decides.
    ;(this.#slots as unknown as { maxAge: number }).maxAge = Math.min(ttlMs, 2 ** 31 - 1)
    this.#slots.set(internal, { value, deadline: Date.now() + ttlMs })
    this.#current.set(key, internal)
    if (this.#current.size > this.#maxEntries) {
      const [oldestKey, oldestInternal] = this.#current.entries().next().value as [string, string]
      this.#remove(oldestKey, oldestInternal)
    }
  }

  delete(key: string): boolean {
    const internal = this.#current.get(key)
    if (internal === undefined) return false
    this.#remove(key, internal)
    return true
  }

  clear(): void {
    this.#current.clear()
    this.#slots.clear()
  }

  #remove(key: string, internal: string): void {
    this.#current.delete(key)
    this.#slots.delete(internal)
  }
}

class MemoryStore implements TokenStore {
  readonly #map: BoundedExpiryMap<Token>

  constructor(options: MemoryStoreOptions) {
    this.#map = new BoundedExpiryMap(options.maxEntries ?? defaultMaxEntries)
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

/** The default `TokenStore`: this process's memory, bounded by `maxEntries`. */
export function memoryStore(options: MemoryStoreOptions = {}): TokenStore {
  return new MemoryStore(options)
}

import { channels, type StoreOperation, summarize } from '../diagnostics.js'
import { storedToken } from '../token.js'
import type { Token, TokenStore } from '../types.js'
import { BoundedMap } from './bounded-map.js'
import type { FetchReason, TokenFetcher } from './fetcher.js'

/** What the loader needs of the cache it loads for. */
export interface LoaderHost {
  /** Makes `token` this process's current token for `key`. */
  remember(key: string, token: Token): void
  /** Whether a token read from the store is worth serving: usable and not due for refresh. */
  isFresh(token: Token): boolean
  /** Why a fetch for `key` starts now. */
  fetchReason(key: string): FetchReason
}

export interface LoaderOptions {
  store: TokenStore
  fetcher: TokenFetcher
  /** Ms a token fetch may take: the lock TokenCache asks for outlives it by little more. */
  timeout: number
  storeTimeout: number
  now: () => number
}

/** Longest pause between two tries for another process's lock (they start at 25 ms and double). */
const maxLockPoll = 250
/**
 * A store whose locks are leases its holder renews (`redisStore()`): a lock it reports
 * held has a live holder, and a lock nobody renews lapses or is taken over within
 * `lockLease` ms. Not part of `TokenStore`: a hint a store may give.
 */
interface LeasingStore {
  readonly lockLease?: unknown
}
/** Marks a store call that failed or timed out, as opposed to one that found nothing. */
const storeFailed: unique symbol = Symbol('store failed')

/**
 * Loads a key's token when the process has none it can use: from the store, else
 * under the store's lock (distributed single flight) from the token source, and
 * writes it back. Every store call is bounded by `storeTimeout`: slower, or failed,
 * is a miss, never a failed request. Single flight within the process is the
 * caller's (TokenCache's p-memoize): one `load` per key at a time.
 */
export class TokenLoader {
  readonly #store: TokenStore
  readonly #fetcher: TokenFetcher
  readonly #timeout: number
  readonly #storeTimeout: number
  readonly #now: () => number
  readonly #host: LoaderHost
  /**
   * The token last rejected (401 or invalidate) per key, and the rejection's number:
   * a copy read from the store, or one a fetch begun before the rejection brings back,
   * must not land again. A fetch begun after it may bring the same token back (many
   * sources repeat a token until it expires): that is the source's answer, and kept.
   */
  readonly #rejected = new BoundedMap<{
    readonly accessToken: string
    readonly at: number
    /** When the rejected token was obtained, if this loader landed it. */
    readonly obtainedAt: number | undefined
  }>()
  /**
   * The token each key last landed with (its `obtainedAt`): a token read from the store
   * that was obtained before a rejected one is no renewal. After a failover the processes
   * may hold different tokens, the store an older one than this process's: when this
   * process's token is rejected (a mass revocation, a rotated credential), the older
   * stored one is most likely rejected too, and a retry with it would fail the request.
   */
  readonly #landed = new BoundedMap<{ readonly accessToken: string; readonly obtainedAt: number }>()
  /** Rejections so far, numbering them. */
  #rejections = 0
  /**
   * Counts `forget()` calls (invalidate without a token, clear). A load that began
   * before one must not keep what it read or fetched: the caller asked to forget it.
   * One count for all keys keeps it small; a forget elsewhere costs a fetch at most.
   */
  #forgets = 0

  constructor(options: LoaderOptions, host: LoaderHost) {
    this.#store = options.store
    this.#fetcher = options.fetcher
    this.#timeout = options.timeout
    this.#storeTimeout = options.storeTimeout
    this.#now = options.now
    this.#host = host
  }

  /** `accessToken` was rejected for `key`: it must not come back from the store or an older fetch. */
  reject(key: string, accessToken: string): void {
    const landed = this.#landed.get(key)
    const obtainedAt = landed?.accessToken === accessToken ? landed.obtainedAt : undefined
    this.#rejected.set(key, { accessToken, at: ++this.#rejections, obtainedAt })
  }

  /** Whatever loads are running now must not keep what they bring. */
  forget(): void {
    this.#forgets++
  }

  clearRejections(): void {
    this.#rejected.clear()
    this.#landed.clear()
  }

  async load(key: string): Promise<Token> {
    let forgets = this.#forgets
    await this.#storeReady()
    const stored = await this.#fromStore(key)
    if (stored !== undefined && this.#forgets === forgets) {
      this.#land(key, stored)
      return stored
    }
    const blocked = this.#fetcher.blocked(key)
    if (blocked !== undefined) throw blocked
    const lock = await this.#lockOrWait(key)
    if (typeof lock !== 'function' && lock !== undefined) {
      this.#land(key, lock) // another process fetched it meanwhile
      return lock
    }
    // The lock is held until the store has the token (or there is none to store).
    let written: Promise<unknown> = Promise.resolve()
    try {
      forgets = this.#forgets // a fetch begun now comes after any forget so far
      const rejections = this.#rejections
      let token = await this.#fetcher.fetch(key, this.#host.fetchReason(key))
      const rejected = this.#rejected.get(key)
      if (rejected?.accessToken === token.accessToken && rejected.at > rejections) {
        // Rejected while this fetch ran, and it brought that token back (it began too
        // early to know): ask once more, and keep whatever a fetch begun after says.
        token = await this.#fetcher.fetch(key, this.#host.fetchReason(key))
      }
      // Forgotten (invalidated without a token, or cleared) while this fetch ran: serve it,
      // do not keep it.
      if (this.#forgets !== forgets) return token
      this.#land(key, token)
      // Callers need not wait for the store.
      written = this.storeCall('set', key, () =>
        this.#store.set(key, token, token.expiresAt - this.#now()),
      )
      return token
    } finally {
      if (lock !== undefined) void written.then(() => this.storeCall('release', key, lock))
    }
  }

  /** `token` becomes the key's current one; whatever lands is not a rejected copy. */
  #land(key: string, token: Token): void {
    this.#rejected.delete(key)
    this.#landed.set(key, { accessToken: token.accessToken, obtainedAt: token.obtainedAt })
    this.#host.remember(key, token)
  }

  /**
   * A store call that fails or is slower than `storeTimeout` counts as a miss
   * (`failed`), published on `store:error`.
   */
  async storeCall<T, F = undefined>(
    operation: StoreOperation,
    key: string | undefined,
    call: () => Promise<T>,
    failed?: F,
  ): Promise<T | F> {
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        call(),
        new Promise<F>((resolve) => {
          timer = setTimeout(() => {
            storeError(
              operation,
              key,
              true,
              new Error(`Store ${operation} took over ${this.#storeTimeout} ms`),
            )
            resolve(failed as F)
          }, this.#storeTimeout)
        }),
      ])
    } catch (error) {
      storeError(operation, key, false, error)
      return failed as F
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Waits, at most `timeout`, for a store whose client is still making its first
   * connection (`store.ready()`): every store call meanwhile would be a miss — a
   * fetch of this process's own, N fetches for N replicas starting together — and
   * a first connection can take longer than `storeTimeout`. A store that is ready,
   * reconnecting after an outage or down resolves at once.
   */
  async #storeReady(): Promise<void> {
    const { ready } = this.#store
    if (ready === undefined) return
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        ready.call(this.#store),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.#timeout)
        }),
      ])
    } catch {
      // A store that cannot say is asked anyway: its calls fail or time out as misses.
    } finally {
      clearTimeout(timer)
    }
  }

  /** A plausible, fresh token from the store that was not rejected, or undefined. */
  async #fromStore(key: string): Promise<Token | undefined> {
    // A store is shared and may hold anything: only a plausible token counts.
    const stored = storedToken(
      await this.storeCall('get', key, () => this.#store.get(key)),
      this.#now(),
    )
    const rejected = this.#rejected.get(key)
    if (
      stored === undefined ||
      rejected?.accessToken === stored.accessToken ||
      (rejected?.obtainedAt !== undefined && stored.obtainedAt < rejected.obtainedAt)
    ) {
      return undefined
    }
    return this.#host.isFresh(stored) ? stored : undefined
  }

  /**
   * Distributed single flight, for stores with a lock: take the key's lock (a
   * release function), or wait for the holder's token to appear in the store
   * (the token). undefined: no lock to be had (no lock support, the store is
   * down, or the holder never delivered) — fetch without one.
   *
   * The lock is asked for the fetch's `timeout` plus the token's write and the release
   * (each bounded by `storeTimeout`) and a poll: it fits the fetch, no fixed slack.
   * How long a waiter waits:
   * - a store with leases (`lockLease`): while the holder is alive, it renews its lock,
   *   so wait for its fetch (the lock's whole ttl); a dead holder's lock lapses, or is
   *   taken over by the store, within a lease — then one waiter fetches;
   * - a store with a fixed lock ttl L (`lockTtl`): a dead holder's lock is gone after L
   *   and a waiter takes over, whose fetch its lock bounds by L again: a lock still held
   *   after two lifetimes (and a poll) is squatted — stop waiting and fetch;
   * - otherwise, the lock's ttl.
   */
  async #lockOrWait(key: string): Promise<(() => Promise<void>) | Token | undefined> {
    const { lock } = this.#store
    if (lock === undefined) return undefined
    const lockTtl = this.#timeout + 2 * this.#storeTimeout + maxLockPoll
    const lease = (this.#store as LeasingStore).lockLease
    const waitFor =
      typeof lease === 'number' && lease > 0
        ? lockTtl + lease + maxLockPoll
        : Math.min(lockTtl, 2 * (this.#store.lockTtl ?? lockTtl) + maxLockPoll)
    const giveUpAt = Date.now() + waitFor
    for (let delay = 25, waited = false; ; delay = Math.min(delay * 2, maxLockPoll)) {
      const release = await this.storeCall(
        'lock',
        key,
        () => lock.call(this.#store, key, lockTtl),
        storeFailed,
      )
      if (typeof release === 'function') {
        if (!waited) return release
        // Taken after a wait: the holder may have stored its token and released just
        // after this process last looked. One read saves a second fetch.
        const token = await this.#fromStore(key)
        if (token === undefined) return release
        void this.storeCall('release', key, release)
        return token
      }
      if (release === storeFailed || Date.now() >= giveUpAt) return undefined
      waited = true
      await new Promise((resolve) => setTimeout(resolve, delay))
      const token = await this.#fromStore(key)
      if (token !== undefined) return token
    }
  }
}

function storeError(
  operation: StoreOperation,
  key: string | undefined,
  timedOut: boolean,
  error: unknown,
): void {
  if (!channels.storeError.hasSubscribers) return
  const message =
    key === undefined
      ? { operation, timedOut, error: summarize(error) }
      : { operation, key, timedOut, error: summarize(error) }
  channels.storeError.publish(message)
}

import { createHash, randomBytes } from 'node:crypto'
import type { Token, TokenStore } from '../types.js'
import { commanderFor, type RedisClient, type RedisCommander } from './redis-client.js'
import { encryptedCodec, plainCodec, type TokenCodec } from './redis-codec.js'

export type { IoRedisClient, NodeRedisClient, RedisClient } from './redis-client.js'

/** Options of `redisStore()`. */
export interface RedisStoreOptions {
  /**
   * A node-redis (`createClient()`) or ioredis (`new Redis()`) client, connected by
   * you and shared with the rest of your app. Recommended options: docs/replicas.md's
   * "Running many replicas".
   */
  client: RedisClient
  /** Start of every Redis key this store writes; default `'undici-access-token:'`. */
  prefix?: string
  /** Ms a fetch lock lives; overrides the ttl TokenCache asks for (its `timeout` + 5 s). */
  lockTtl?: number
  /** 32 bytes, or a base64 string of 32 bytes: tokens are AES-256-GCM encrypted at rest. */
  encryptionKey?: Uint8Array | string
}

/** A `TokenStore` that always has `lock` and `clear`. */
export interface RedisTokenStore extends TokenStore {
  lock(key: string, ttlMs: number): Promise<(() => Promise<void>) | undefined>
  clear(): Promise<void>
  /**
   * Resolves once the client's first connection has settled (ready, or its first
   * attempt failed); at once when it is ready, reconnecting after an outage, or closed.
   * Never rejects. TokenCache waits for it (at most its `timeout`) before it reads the
   * store, so a replica that gets requests while its client is still connecting shares
   * the fleet's token instead of fetching one of its own.
   */
  ready(): Promise<void>
  /** The `lockTtl` option: how long a fetch lock lives, when set; else TokenCache's choice. */
  readonly lockTtl: number | undefined
}

const defaultPrefix = 'undici-access-token:'

/*
 * Both scripts run atomically in Redis (no other command runs between the GET and
 * the DEL; https://redis.io/docs/latest/develop/interact/programmability/eval-intro/),
 * which is what a GET then DEL from the client cannot promise.
 */

/** Delete-if-equal: DEL the token key only if its value starts with ARGV[1] (`<fingerprint>.`). */
const deleteIfFingerprint = `local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`

/**
 * Compare-and-delete release, the single-instance pattern of
 * https://redis.io/docs/latest/develop/use/patterns/distributed-locks/: only the
 * holder (who knows the random value) deletes the lock, so a holder whose lock
 * expired and was taken over cannot release the new holder's.
 */
const releaseIfOwner = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`

/** Most SCAN rounds one `clear()` makes: a bound, far above what a token keyspace needs. */
const maxScanRounds = 100_000

class RedisStore implements RedisTokenStore {
  readonly #redis: RedisCommander
  readonly #prefix: string
  readonly lockTtl: number | undefined
  readonly #codec: TokenCodec

  constructor(options: RedisStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('redisStore needs options: { client, prefix?, lockTtl?, encryptionKey? }')
    }
    this.#redis = commanderFor(options.client)
    const prefix = options.prefix ?? defaultPrefix
    if (typeof prefix !== 'string') throw new TypeError('prefix must be a string')
    this.#prefix = prefix
    const { lockTtl } = options
    if (
      lockTtl !== undefined &&
      !(typeof lockTtl === 'number' && lockTtl >= 1 && lockTtl < 2 ** 53)
    ) {
      throw new RangeError(`lockTtl must be a positive number of ms, got ${String(lockTtl)}`)
    }
    this.lockTtl = lockTtl
    this.#codec =
      options.encryptionKey === undefined ? plainCodec() : encryptedCodec(options.encryptionKey)
  }

  ready(): Promise<void> {
    return this.#redis.firstConnection()
  }

  async get(key: string): Promise<Token | undefined> {
    const redisKey = this.#tokenKey(key)
    const value = await this.#redis.run(['GET', redisKey])
    const text = asText(value)
    return text === undefined ? undefined : this.#codec.decode(text, redisKey)
  }

  async set(key: string, token: Token, ttlMs: number): Promise<void> {
    const redisKey = this.#tokenKey(key)
    // Redis expires the entry with the token (PX: whole ms). Rounded down so the
    // entry never outlives the token; nothing left to live means nothing to keep.
    const ms = Math.floor(ttlMs)
    if (!(ms >= 1)) {
      await this.#redis.run(['DEL', redisKey])
      return
    }
    await this.#redis.run(['SET', redisKey, this.#codec.encode(token, redisKey), 'PX', String(ms)])
  }

  async delete(key: string, ifAccessToken?: string): Promise<boolean> {
    const redisKey = this.#tokenKey(key)
    const reply =
      ifAccessToken === undefined
        ? await this.#redis.run(['DEL', redisKey])
        : await this.#redis.run([
            'EVAL',
            deleteIfFingerprint,
            '1',
            redisKey,
            `${this.#codec.fingerprint(ifAccessToken)}.`,
          ])
    return Number(reply) === 1
  }

  /**
   * `SET <lock> <random> NX PX <ttl>` (https://redis.io/docs/latest/commands/set/):
   * taken only if nobody holds it, and gone after `ttl` even if the holder dies
   * mid-fetch, so another process takes over. This is an efficiency lock: should it
   * ever be lost (e.g. a failover to a replica that had not seen it), two processes
   * fetch a token, which is harmless; so one Redis node is enough, no Redlock.
   */
  async lock(key: string, ttlMs: number): Promise<(() => Promise<void>) | undefined> {
    const ms = Math.ceil(this.lockTtl ?? ttlMs)
    if (!(ms >= 1 && ms < 2 ** 53)) {
      throw new RangeError(`lock ttl must be a positive number of ms, got ${String(ttlMs)}`)
    }
    const lockKey = this.#lockKey(key)
    const owner = randomBytes(16).toString('base64url')
    const reply = await this.#redis.run(['SET', lockKey, owner, 'NX', 'PX', String(ms)])
    if (asText(reply) !== 'OK') return undefined
    let released = false
    return async () => {
      if (released) return
      released = true
      await this.#redis.run(['EVAL', releaseIfOwner, '1', lockKey, owner])
    }
  }

  /** Deletes every token under this prefix (not the locks: they belong to fetches in flight). */
  async clear(): Promise<void> {
    const { keyPrefix } = this.#redis
    // SCAN's MATCH is a glob and, with ioredis keyPrefix, sees the prefixed names.
    const pattern = `${escapeGlob(keyPrefix + this.#prefix)}token:*`
    let cursor = '0'
    for (let round = 0; round < maxScanRounds; round++) {
      const reply = await this.#redis.run(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '500'])
      if (!Array.isArray(reply) || reply.length !== 2)
        throw new Error('Redis SCAN: unexpected reply')
      const [next, found] = reply as [unknown, unknown]
      const keys = Array.isArray(found)
        ? found
            .map(asText)
            .filter((name): name is string => name?.startsWith(keyPrefix) === true)
            .map((name) => name.slice(keyPrefix.length)) // ioredis adds keyPrefix again
        : []
      if (keys.length > 0) await this.#redis.run(['DEL', ...(keys as [string, ...string[]])])
      cursor = asText(next) ?? '0'
      if (cursor === '0') return
    }
  }

  /*
   * The caller's key may be anything (a scope list, a tenant name, a URL): hashed, it
   * is a fixed-length name with no token, secret or odd character in it.
   */
  #tokenKey(key: string): string {
    return `${this.#prefix}token:${hashKey(key)}`
  }

  #lockKey(key: string): string {
    return `${this.#prefix}lock:${hashKey(key)}`
  }
}

function hashKey(key: string): string {
  return createHash('sha256').update(String(key)).digest('hex')
}

/** A string reply as a string (a Buffer when the client is set to return buffers). */
function asText(reply: unknown): string | undefined {
  if (typeof reply === 'string') return reply
  if (reply instanceof Uint8Array) return Buffer.from(reply).toString('utf8')
  return undefined
}

/** Escapes Redis glob characters (`* ? [ ] \`) so a prefix matches only itself. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

/**
 * A `TokenStore` in Redis, shared by every process and machine that uses the same
 * Redis and prefix: tokens with a TTL of their remaining lifetime, an atomic
 * delete-if-equal, a `SET NX PX` fetch lock, and optional AES-256-GCM at rest.
 * Works with node-redis and ioredis clients; neither is a dependency.
 */
export function redisStore(options: RedisStoreOptions): RedisTokenStore {
  return new RedisStore(options)
}

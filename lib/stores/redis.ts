import { createHash } from 'node:crypto'
import type { Token, TokenStore } from '../types.js'
import type { RedisClient } from './redis-client.js'
import { encryptedCodec, plainCodec, type TokenCodec } from './redis-codec.js'
import { asText, commanderFor, type RedisCommander } from './redis-commander.js'
import { LeaseLocks } from './redis-lock.js'

export type {
  IoRedisClient,
  IoRedisCluster,
  NodeRedisClient,
  NodeRedisCluster,
  RedisClient,
} from './redis-client.js'

/** Options of `redisStore()`. */
export interface RedisStoreOptions {
  /**
   * A node-redis client (`createClient()` or `createCluster()`) or an ioredis client
   * (`new Redis()`, with `sentinels` or without, or `new Cluster()`), connected by you
   * and shared with the rest of your app. Recommended options: docs/replicas.md.
   */
  client: RedisClient
  /**
   * Start of every Redis key this store writes; default `'undici-access-token:'`. It may
   * hold a whole `{…}` hash tag (then all keys share one cluster slot), not a lone brace.
   */
  prefix?: string
  /**
   * Ms a fetch lock outlives its holder's last renewal; default 1 000. The holder renews
   * it every third of that while it fetches (at most TokenCache's `timeout`), so a lock
   * whose holder died, or that a failover left behind, is gone or taken over this soon.
   */
  lockTtl?: number
  /** 32 bytes, or a base64 string of 32 bytes: tokens are AES-256-GCM encrypted at rest. */
  encryptionKey?: Uint8Array | string
}

/** A `TokenStore` that always has `lock` and `clear`. */
export interface RedisTokenStore extends TokenStore {
  /**
   * Takes the key's fetch lock for at most `ttlMs` (TokenCache asks for its `timeout` and
   * a little more) as a lease of `lockTtl` that this process renews while it holds it.
   */
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
  /** The `lockTtl` option, when set. */
  readonly lockTtl: number | undefined
  /**
   * Ms a lock outlives its holder's last renewal (`lockTtl`, default 1 000). Its presence
   * tells TokenCache that a lock held here has a live holder — the store itself takes
   * over one nobody renews — so a waiter waits for the holder's fetch (its `timeout`),
   * not for about two lock lifetimes as with a store whose locks simply expire.
   */
  readonly lockLease: number
}

const defaultPrefix = 'undici-access-token:'
/** A lock outlives its holder's last renewal by this much unless `lockTtl` says otherwise. */
const defaultLockLease = 1_000

/**
 * Delete-if-equal: DEL the token key only if its value starts with ARGV[1] (`<fingerprint>.`).
 * A script runs atomically in Redis, as the lock's do (redis-lock.ts): no other command
 * runs between its GET and its DEL, which a GET then a DEL from the client cannot promise.
 */
const deleteIfFingerprint = `local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`

/** Most SCAN rounds one `clear()` makes per node: a bound, far above what a token keyspace needs. */
const maxScanRounds = 100_000

class RedisStore implements RedisTokenStore {
  readonly #redis: RedisCommander
  readonly #prefix: string
  readonly lockTtl: number | undefined
  readonly lockLease: number
  readonly #codec: TokenCodec
  readonly #locks: LeaseLocks

  constructor(options: RedisStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('redisStore needs options: { client, prefix?, lockTtl?, encryptionKey? }')
    }
    this.#redis = commanderFor(options.client)
    const prefix = options.prefix ?? defaultPrefix
    if (typeof prefix !== 'string') throw new TypeError('prefix must be a string')
    checkHashTag(this.#redis.keyPrefix + prefix)
    this.#prefix = prefix
    const { lockTtl } = options
    if (
      lockTtl !== undefined &&
      !(typeof lockTtl === 'number' && lockTtl >= 1 && lockTtl < 2 ** 53)
    ) {
      throw new RangeError(`lockTtl must be a positive number of ms, got ${String(lockTtl)}`)
    }
    this.lockTtl = lockTtl
    this.lockLease = Math.ceil(lockTtl ?? defaultLockLease)
    this.#locks = new LeaseLocks(this.#redis, this.lockLease)
    this.#codec =
      options.encryptionKey === undefined ? plainCodec() : encryptedCodec(options.encryptionKey)
  }

  ready(): Promise<void> {
    return this.#redis.firstConnection()
  }

  async get(key: string): Promise<Token | undefined> {
    const redisKey = this.#tokenKey(key)
    const value = await this.#redis.run(['GET', redisKey], redisKey)
    const text = asText(value)
    return text === undefined ? undefined : this.#codec.decode(text, redisKey)
  }

  async set(key: string, token: Token, ttlMs: number): Promise<void> {
    const redisKey = this.#tokenKey(key)
    // Redis expires the entry with the token (PX: whole ms). Rounded down so the
    // entry never outlives the token; nothing left to live means nothing to keep.
    const ms = Math.floor(ttlMs)
    if (!(ms >= 1)) {
      await this.#redis.run(['DEL', redisKey], redisKey)
      return
    }
    await this.#redis.run(
      ['SET', redisKey, this.#codec.encode(token, redisKey), 'PX', String(ms)],
      redisKey,
    )
  }

  async delete(key: string, ifAccessToken?: string): Promise<boolean> {
    const redisKey = this.#tokenKey(key)
    const reply =
      ifAccessToken === undefined
        ? await this.#redis.run(['DEL', redisKey], redisKey)
        : await this.#redis.run(
            [
              'EVAL',
              deleteIfFingerprint,
              '1',
              redisKey,
              `${this.#codec.fingerprint(ifAccessToken)}.`,
            ],
            redisKey,
          )
    return Number(reply) === 1
  }

  /** The key's fetch lock: a lease its holder renews (LeaseLocks, redis-lock.ts). */
  async lock(key: string, ttlMs: number): Promise<(() => Promise<void>) | undefined> {
    return this.#locks.acquire(this.#lockKey(key), ttlMs)
  }

  /**
   * Deletes every token under this prefix (not the locks: they belong to fetches in
   * flight). SCAN sees one node's keys, so a cluster is scanned on each primary
   * (https://redis.io/docs/latest/commands/scan/); the keys found are deleted through
   * the cluster client, one per command, each key being in a slot of its own.
   */
  async clear(): Promise<void> {
    const { keyPrefix, cluster } = this.#redis
    // SCAN's MATCH is a glob and, with ioredis keyPrefix, sees the prefixed names.
    const pattern = `${escapeGlob(keyPrefix + this.#prefix)}token:*`
    for (const node of await this.#redis.primaries()) {
      let cursor = '0'
      for (let round = 0; round < maxScanRounds; round++) {
        const reply = await node.run(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '500'])
        if (!Array.isArray(reply) || reply.length !== 2)
          throw new Error('Redis SCAN: unexpected reply')
        const [next, found] = reply as [unknown, unknown]
        const keys = Array.isArray(found)
          ? found
              .map(asText)
              .filter((name): name is string => name?.startsWith(keyPrefix) === true)
              .map((name) => name.slice(keyPrefix.length)) // ioredis adds keyPrefix again
          : []
        if (cluster) {
          await Promise.all(keys.map((name) => this.#redis.run(['DEL', name], name)))
        } else if (keys.length > 0) {
          const [first, ...rest] = keys as [string, ...string[]]
          await this.#redis.run(['DEL', first, ...rest], first)
        }
        cursor = asText(next) ?? '0'
        if (cursor === '0') break
      }
    }
  }

  /*
   * The caller's key may be anything (a scope list, a tenant name, a URL): hashed, it
   * is a fixed-length name with no token, secret or odd character in it. In braces, it
   * is the key's hash tag: a token and its lock share a cluster slot
   * (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags).
   */
  #tokenKey(key: string): string {
    return `${this.#prefix}token:{${hashKey(key)}}`
  }

  #lockKey(key: string): string {
    return `${this.#prefix}lock:{${hashKey(key)}}`
  }
}

/**
 * Redis Cluster hashes only the part between the first `{` and the first `}` after it,
 * if that part is not empty. A prefix with a whole tag of its own puts every key in one
 * slot, which is fine; a prefix with a lone or empty brace would make the tag differ
 * between a token and its lock (`…token:{h` vs `…lock:{h`), so it is refused.
 */
function checkHashTag(prefix: string): void {
  const open = prefix.indexOf('{')
  if (open === -1) return
  const close = prefix.indexOf('}', open + 1)
  if (close > open + 1) return
  throw new TypeError(
    'prefix must not hold a lone or empty "{": a token and its lock must share a Redis Cluster hash slot',
  )
}

function hashKey(key: string): string {
  return createHash('sha256').update(String(key)).digest('hex')
}

/** Escapes Redis glob characters (`* ? [ ] \`) so a prefix matches only itself. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

/**
 * A `TokenStore` in Redis, shared by every process and machine that uses the same
 * Redis and prefix: tokens with a TTL of their remaining lifetime, an atomic
 * delete-if-equal, a fetch lock its holder renews (a lease), and optional AES-256-GCM
 * at rest.
 * Works with node-redis and ioredis clients, Redis Cluster and Sentinel included;
 * neither client is a dependency.
 */
export function redisStore(options: RedisStoreOptions): RedisTokenStore {
  return new RedisStore(options)
}

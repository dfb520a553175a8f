/*
 * The Redis store's fetch lock: a lease its holder renews, that a waiter takes over once
 * nobody has renewed it for a whole lease. Its Lua scripts run atomically in Redis (no
 * other command runs between a script's GET and its write;
 * https://redis.io/docs/latest/develop/interact/programmability/eval-intro/), which is
 * what a GET then a write from the client cannot promise. Each touches one key, so each
 * stays in one cluster slot.
 */
import { randomBytes } from 'node:crypto'
import { BoundedMap } from '../cache/bounded-map.js'
import { asText, type RedisCommander } from './redis-commander.js'

/** Renewals per lease: a holder whose event loop stalls for two of them still keeps its lock. */
const renewalsPerLease = 3

/**
 * Take the lock: SET it (value ARGV[1], PX ARGV[2]) if nobody holds it — or if it still
 * holds ARGV[3], a value this process saw unchanged (unrenewed) for a whole lease: a
 * holder that died, a lock a failover left behind, a squatter. Otherwise answer the
 * holder's value, so that the waiter can tell a live (renewing) holder from a dead one.
 * (SET NX GET would need Redis 7; this works from 2.6.)
 */
const acquireOrTakeOver = `local current = redis.call('GET', KEYS[1])
if not current or current == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1}
end
return {0, current}`

/**
 * Renew: only the holder (whose random owner id starts the value, ARGV[1]) sets the next
 * value (ARGV[2]) with a fresh lease (PX ARGV[3]); 0 when the lock is no longer its own.
 * The value changes on every renewal, so waiters see a live holder.
 */
const renewIfOwner = `local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`

/**
 * Compare-and-delete release, the single-instance pattern of
 * https://redis.io/docs/latest/develop/use/patterns/distributed-locks/: only the
 * holder (who knows the random owner id) deletes the lock, so a holder whose lock
 * expired and was taken over cannot release the new holder's.
 */
const releaseIfOwner = `local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`

/** A lock value another process holds, and when (Date.now) this process first saw it. */
interface Sighting {
  readonly value: string
  readonly since: number
}

/**
 * The fetch locks of one store, one Redis key each. Each is a lease
 * (https://redis.io/docs/latest/develop/use/patterns/distributed-locks/, one instance):
 * the lock is SET with a TTL of the lease (the store's `lockLease`), and its holder
 * renews it every third of that until it releases it or `ttlMs` has passed. So a lock
 * never outlives a dead holder by more than a lease, whatever `ttlMs` — and a lock that
 * is still held after a lease without a renewal (its holder gone but its TTL long: a
 * squatter, an old version's lock) is taken over by one waiter, atomically. A failover may lose the
 * lock or carry it to the promoted replica (replication is asynchronous): lost, two
 * processes fetch; carried, its live holder goes on renewing it and a dead one's lapses
 * within a lease. An efficiency lock: it saves token requests, and nothing depends on
 * it for correctness, so one node is enough — no Redlock.
 */
export class LeaseLocks {
  readonly #redis: RedisCommander
  /** Ms a lock outlives its holder's last renewal. */
  readonly #lease: number
  /** Per lock key, the holder's value as last seen: unchanged for a lease means nobody renews it. */
  readonly #sightings = new BoundedMap<Sighting>()

  constructor(redis: RedisCommander, lease: number) {
    this.#redis = redis
    this.#lease = lease
  }

  /**
   * Takes `lockKey` for at most `ttlMs`; resolves to its release, or to undefined when
   * another holder has it.
   */
  async acquire(lockKey: string, ttlMs: number): Promise<(() => Promise<void>) | undefined> {
    const cap = Math.ceil(ttlMs)
    if (!(cap >= 1 && cap < 2 ** 53)) {
      throw new RangeError(`lock ttl must be a positive number of ms, got ${String(ttlMs)}`)
    }
    const lease = Math.min(this.#lease, cap)
    const owner = `${randomBytes(16).toString('base64url')}.`
    const seen = this.#sightings.get(lockKey)
    const stale = seen !== undefined && Date.now() - seen.since >= this.#lease ? seen.value : ''
    const reply = await this.#redis.run(
      ['EVAL', acquireOrTakeOver, '1', lockKey, `${owner}0`, String(lease), stale],
      lockKey,
    )
    if (!Array.isArray(reply)) throw new Error('Redis EVAL: unexpected reply')
    if (Number(reply[0]) !== 1) {
      const value = asText(reply[1]) ?? ''
      if (seen?.value !== value) this.#sightings.set(lockKey, { value, since: Date.now() })
      return undefined
    }
    this.#sightings.delete(lockKey)
    const stop = this.#renew(lockKey, owner, lease, Date.now() + cap)
    let released = false
    return async () => {
      if (released) return
      released = true
      stop()
      await this.#redis.run(['EVAL', releaseIfOwner, '1', lockKey, owner], lockKey)
    }
  }

  /**
   * Renews the lock every third of its lease until `deadline` (the lock's cap) or the
   * returned stop function. A renewal that fails (Redis unreachable, a failover) is tried
   * again at the next beat while the lease may still hold; one that finds the lock taken
   * over stops. One renewal at a time, so a slow Redis never gets a pile of them.
   */
  #renew(lockKey: string, owner: string, lease: number, deadline: number): () => void {
    let beat = 0
    let inFlight = false
    const timer = setInterval(
      () => {
        const left = deadline - Date.now()
        if (left <= 0) {
          clearInterval(timer)
          return
        }
        if (inFlight) return
        inFlight = true
        beat++
        this.#redis
          .run(
            [
              'EVAL',
              renewIfOwner,
              '1',
              lockKey,
              owner,
              `${owner}${beat}`,
              String(Math.min(lease, Math.ceil(left))),
            ],
            lockKey,
          )
          .then(
            (renewed) => {
              if (Number(renewed) !== 1) clearInterval(timer) // taken over, or lapsed
            },
            () => {}, // unreachable now: try again next beat
          )
          .finally(() => {
            inFlight = false
          })
      },
      Math.max(1, Math.floor(lease / renewalsPerLease)),
    )
    // A renewal never keeps the process alive on its own.
    timer.unref()
    return () => clearInterval(timer)
  }
}

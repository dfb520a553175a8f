// A fetch lock held elsewhere and never released (a squatter: a stuck or dead holder,
// or anything else that SET the key): a cold get() waits about the store's lockTtl,
// not TokenCache's timeout + 5 s, then fetches without the lock.
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest'
import { TokenCache } from '../../lib/index.js'
import { redisStore } from '../../lib/stores/redis.js'
import { type ConnectedClient, clientKinds, connectClient } from './fixtures/clients.js'
import { type RedisServer, startRedisServer } from './helpers/redis-server.js'

let redis: RedisServer

beforeAll(async () => {
  redis = await startRedisServer()
})

afterAll(async () => {
  await redis?.dispose()
})

/** `promise`, or a failure naming `what` if it has not settled within `ms` (a guard, not a measurement). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} (not settled within ${ms} ms)`)), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** The Redis name of a cache key's fetch lock (lib/stores/redis.ts: `<prefix>lock:<sha256>`). */
function lockKey(prefix: string, key: string): string {
  return `${prefix}lock:${createHash('sha256').update(key).digest('hex')}`
}

describe.each(clientKinds)('with %s', (kind) => {
  let connected: ConnectedClient

  beforeAll(async () => {
    connected = await connectClient(kind, redis.port)
  })

  afterAll(async () => {
    await connected?.close()
  })

  test('the store exposes its lockTtl option (undefined when not set)', () => {
    expect(redisStore({ client: connected.client, lockTtl: 500 }).lockTtl).toBe(500)
    expect(redisStore({ client: connected.client }).lockTtl).toBeUndefined()
  })

  test('a squatted lock (SET by hand, PX 60 s) delays a cold get() by about the store’s lockTtl (500 ms), not TokenCache’s timeout + 5 s: one fetch, the squatter’s lock untouched', async () => {
    const prefix = `squat-${randomBytes(6).toString('hex')}:`
    const lock = lockKey(prefix, 'default')
    expect(await connected.command(['SET', lock, 'squatter', 'PX', '60000'])).toBe('OK')
    let n = 0
    const fetchToken = vi.fn(async () => ({ accessToken: `tok-${++n}`, expiresIn: 3600 }))
    const cache = new TokenCache({
      fetchToken,
      store: redisStore({ client: connected.client, prefix, lockTtl: 500 }),
      timeout: 10_000,
    })
    // timeout + 5 s would be 15 s; about lockTtl is well under the 3 s guard.
    const token = await within(cache.get(), 3_000, 'the cold get() waited past the store’s lockTtl')
    expect(token.accessToken).toBe('tok-1')
    expect(fetchToken).toHaveBeenCalledTimes(1)
    expect(await connected.command(['GET', lock])).toBe('squatter')
  })
})

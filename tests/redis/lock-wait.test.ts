// A fetch lock held elsewhere and never renewed (a squatter: a dead holder, an older
// version's lock, a lock a failover carried over, or anything else that SET the key):
// a cold get() waits about the store's lockTtl (a lease), not TokenCache's timeout,
// then takes the lock over and fetches.
import { randomBytes } from 'node:crypto'
import { describe, expect, test, vi } from 'vitest'
import { TokenCache } from '../../lib/index.js'
import { redisStore } from '../../lib/stores/redis.js'
import { clientKinds } from './fixtures/clients.js'
import { redisKeyName } from './helpers/keys.js'
import { useClient, useRedisServer } from './helpers/setup.js'
import { within } from './helpers/wait.js'

const redis = useRedisServer()

describe.each(clientKinds)('with %s', (kind) => {
  const connected = useClient(kind, redis)

  test('the store exposes its lockTtl option (undefined when not set)', () => {
    expect(redisStore({ client: connected.client, lockTtl: 500 }).lockTtl).toBe(500)
    expect(redisStore({ client: connected.client }).lockTtl).toBeUndefined()
  })

  test('a squatted lock (SET by hand, PX 60 s, never renewed) delays a cold get() by about the store’s lockTtl (500 ms), not TokenCache’s timeout: one fetch, under the lock taken over', async () => {
    const prefix = `squat-${randomBytes(6).toString('hex')}:`
    const lock = redisKeyName(prefix, 'lock', 'default')
    expect(await connected.command(['SET', lock, 'squatter', 'PX', '60000'])).toBe('OK')
    let n = 0
    const fetchToken = vi.fn(async () => ({ accessToken: `tok-${++n}`, expiresIn: 3600 }))
    const cache = new TokenCache({
      fetchToken,
      store: redisStore({ client: connected.client, prefix, lockTtl: 500 }),
      timeout: 10_000,
    })
    // Waiting for the lock's TTL would be 60 s; about lockTtl is well under the 3 s guard.
    const token = await within(cache.get(), 3_000, 'the cold get() waited past the store’s lockTtl')
    expect(token.accessToken).toBe('tok-1')
    expect(fetchToken).toHaveBeenCalledTimes(1)
    // Taken over (compare-and-set on the squatter's value; released once the token is stored).
    expect(await connected.command(['GET', lock])).not.toBe('squatter')
  })
})

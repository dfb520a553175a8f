// TokenCache on redisStore in one process: sharing, a wrong key, a Redis that hangs.
import { randomBytes } from 'node:crypto'
import { describe, expect, test, vi } from 'vitest'
import { TokenCache } from '../../lib/index.js'
import { redisStore } from '../../lib/stores/redis.js'
import { clientKinds } from './fixtures/clients.js'
import { useClient, useRedisServer } from './helpers/setup.js'

const redis = useRedisServer()

function counter() {
  let n = 0
  return vi.fn(async () => ({ accessToken: `tok-${++n}`, expiresIn: 3600 }))
}

describe.each(clientKinds)('with %s', (kind) => {
  const a = useClient(kind, redis)
  const b = useClient(kind, redis)

  test('a second cache reads the first one’s token from Redis instead of fetching', async () => {
    const prefix = `tc-${randomBytes(4).toString('hex')}:`
    const fetchA = counter()
    const fetchB = counter()
    const first = new TokenCache({
      fetchToken: fetchA,
      store: redisStore({ client: a.client, prefix }),
    })
    const second = new TokenCache({
      fetchToken: fetchB,
      store: redisStore({ client: b.client, prefix }),
    })
    expect((await first.get()).accessToken).toBe('tok-1')
    expect((await second.get()).accessToken).toBe('tok-1')
    expect(fetchA).toHaveBeenCalledTimes(1)
    expect(fetchB).not.toHaveBeenCalled()
  })

  test('concurrent caches on a cold key: one fetch between them (the lock)', async () => {
    const prefix = `tc-${randomBytes(4).toString('hex')}:`
    const fetches = vi.fn(async () => {
      await new Promise((resolve) => setTimeout(resolve, 100))
      return { accessToken: 'tok-shared', expiresIn: 3600 }
    })
    const caches = [a, b, a, b].map(
      (connected) =>
        new TokenCache({
          fetchToken: fetches,
          store: redisStore({ client: connected.client, prefix }),
        }),
    )
    const tokens = await Promise.all(caches.flatMap((cache) => [cache.get(), cache.get()]))
    expect(tokens.every((t) => t.accessToken === 'tok-shared')).toBe(true)
    expect(fetches).toHaveBeenCalledTimes(1)
  })

  test('another encryption key: a miss and a fetch of its own, never an error; the right key shares', async () => {
    const prefix = `tc-${randomBytes(4).toString('hex')}:`
    const key = randomBytes(32)
    const fetchRight = counter()
    const fetchWrong = counter()
    const fetchAlsoRight = counter()
    const writer = new TokenCache({
      fetchToken: fetchRight,
      store: redisStore({ client: a.client, prefix, encryptionKey: key }),
    })
    await writer.get()
    const right = new TokenCache({
      fetchToken: fetchAlsoRight,
      store: redisStore({ client: b.client, prefix, encryptionKey: key.toString('base64') }),
    })
    await right.get()
    expect(fetchAlsoRight).not.toHaveBeenCalled()
    const wrong = new TokenCache({
      fetchToken: fetchWrong,
      store: redisStore({ client: b.client, prefix, encryptionKey: randomBytes(32) }),
    })
    await expect(wrong.get()).resolves.toMatchObject({ accessToken: 'tok-1' })
    expect(fetchWrong).toHaveBeenCalledTimes(1)
  })

  test('a Redis that hangs (CLIENT PAUSE) is a miss after storeTimeout: the token is fetched locally', async () => {
    const prefix = `tc-${randomBytes(4).toString('hex')}:`
    const fetchToken = counter()
    const cache = new TokenCache({
      fetchToken,
      storeTimeout: 100,
      store: redisStore({ client: b.client, prefix }),
    })
    await a.command(['CLIENT', 'PAUSE', '1500', 'ALL'])
    const started = performance.now()
    const token = await cache.get()
    const elapsed = performance.now() - started
    expect(token.accessToken).toBe('tok-1')
    expect(fetchToken).toHaveBeenCalledTimes(1)
    expect(elapsed).toBeLessThan(1_000) // not the 1.5 s pause
    // After the pause the queued commands run; the store works as before.
    await new Promise((resolve) => setTimeout(resolve, 1_600))
    const later = new TokenCache({
      fetchToken: counter(),
      store: redisStore({ client: a.client, prefix: `${prefix}after:` }),
    })
    await expect(later.get()).resolves.toMatchObject({ accessToken: 'tok-1' })
  })
})

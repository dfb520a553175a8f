// A Redis client still making its first connection is waited for (it is how every
// replica starts: the README's ioredis example connects in the background); a client
// reconnecting after an outage, or whose first attempt failed, is not.
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { describe, expect, test, vi } from 'vitest'
import { TokenCache } from '../../lib/index.js'
import { type RedisTokenStore, redisStore } from '../../lib/stores/redis.js'
import { clientKinds, connectClient, startClient } from './fixtures/clients.js'
import { freePort } from './helpers/redis-server.js'
import { useClient, useRedisServer } from './helpers/setup.js'
import { waitUntil, within } from './helpers/wait.js'

const redis = useRedisServer()

function uniquePrefix(): string {
  return `first-${randomBytes(6).toString('hex')}:`
}

function counter() {
  let n = 0
  return vi.fn(async () => ({ accessToken: `tok-${++n}`, expiresIn: 3600 }))
}

/**
 * `store`'s client is down and not waited for: commands are refused at once and a cold
 * TokenCache fetches the token locally. Waiting for a client that keeps failing would
 * last the whole timeout (10 s), well past the 3 s guard.
 */
async function expectRefusedAndFetchedLocally(store: RedisTokenStore): Promise<void> {
  await expect(store.get('k')).rejects.toThrow(/not connected/)
  const fetchToken = counter()
  const cache = new TokenCache({ fetchToken, store, timeout: 10_000 })
  const token = await within(cache.get(), 3_000, 'get() waited for a reconnect')
  expect(token.accessToken).toBe('tok-1')
  expect(fetchToken).toHaveBeenCalledTimes(1)
}

describe.each(clientKinds)('with %s', (kind) => {
  const writer = useClient(kind, redis)

  test('ready() waits for a client still making its first connection; then commands are sent', async () => {
    const connected = startClient(kind, redis.port)
    try {
      const store = redisStore({ client: connected.client, prefix: uniquePrefix() })
      expect(connected.isReady()).toBe(false) // the scenario: still connecting
      await within(store.ready(), 5_000, 'ready() did not settle')
      expect(connected.isReady()).toBe(true)
      expect(await store.get('k')).toBeUndefined()
    } finally {
      await connected.close()
    }
  })

  test('a cold TokenCache whose client is still connecting reads the token another replica stored, no fetch of its own (the first connection is waited for)', async () => {
    const prefix = uniquePrefix()
    const first = new TokenCache({
      fetchToken: counter(),
      store: redisStore({ client: writer.client, prefix }),
    })
    expect((await first.get()).accessToken).toBe('tok-1')

    const connected = startClient(kind, redis.port)
    try {
      const fetchToken = counter()
      const cache = new TokenCache({
        fetchToken,
        store: redisStore({ client: connected.client, prefix }),
      })
      expect(connected.isReady()).toBe(false) // the scenario: still connecting
      const tokens = await Promise.all(Array.from({ length: 20 }, () => cache.get()))
      expect(tokens.every((token) => token.accessToken === 'tok-1')).toBe(true)
      expect(fetchToken).not.toHaveBeenCalled()
    } finally {
      await connected.close()
    }
  })

  test('a first connection that fails (nothing listening) is not waited for beyond that attempt: commands refused at once, the token fetched locally', async () => {
    const connected = startClient(kind, await freePort()) // nothing listens on it
    try {
      const store = redisStore({ client: connected.client, prefix: uniquePrefix() })
      await within(store.ready(), 5_000, 'ready() waited for a reconnect')
      expect(connected.isReady()).toBe(false)
      await expectRefusedAndFetchedLocally(store)
    } finally {
      await connected.close()
    }
  })
})

test('ioredis with lazyConnect (status wait): ready() connects it, as its first command would, and waits for it', async () => {
  const client = new Redis(`redis://127.0.0.1:${redis.port}`, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
  })
  client.on('error', () => {})
  try {
    const store = redisStore({ client, prefix: uniquePrefix() })
    expect(client.status).toBe('wait')
    await within(store.ready(), 5_000, 'ready() did not settle')
    expect(client.status).toBe('ready')
    expect(await store.get('k')).toBeUndefined()
  } finally {
    client.disconnect()
  }
})

test('a client that cannot be watched (no on/off) is never waited for', async () => {
  const call = vi.fn(async () => null)
  const store = redisStore({ client: { status: 'connecting', call } })
  await within(store.ready(), 1_000, 'ready() waited')
  await expect(store.get('k')).rejects.toThrow(/not connected \(connecting\)/)
  expect(call).not.toHaveBeenCalled()
})

// Last: it stops and restarts the file's redis-server.
describe.each(clientKinds)('Redis stopped after the first connection, with %s', (kind) => {
  test('a later reconnect is not waited for: ready() settles while Redis is down, commands are refused at once, the token is fetched locally', async () => {
    const connected = await connectClient(kind, redis.port)
    try {
      const store = redisStore({ client: connected.client, prefix: uniquePrefix() })
      await redis.stop()
      await waitUntil(() => !connected.isReady(), 2_000)
      await within(store.ready(), 1_000, 'ready() waited for a reconnect')
      expect(connected.isReady()).toBe(false) // Redis is still down
      await expectRefusedAndFetchedLocally(store)
    } finally {
      await connected.close()
      await redis.start()
    }
  })
})

// TokenCache and a store with a lock (the distributed single flight): the lock is
// always released, whichever way the fetch it guards ends.
import { expect, test } from 'vitest'
import { memoryStore, type Token, TokenCache, type TokenStore } from '../lib/index.js'

function lockingStore() {
  const inner = memoryStore()
  const events: string[] = []
  const store: TokenStore = {
    get: (key) => inner.get(key),
    set: async (key, token: Token, ttl) => {
      events.push('set')
      await inner.set(key, token, ttl)
    },
    delete: (key, ifAccessToken) => inner.delete(key, ifAccessToken),
    clear: async () => inner.clear?.(),
    lock: async () => {
      events.push('lock')
      return async () => {
        events.push('release')
      }
    },
  }
  return { store, events }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20))

test('the lock is released after the token is stored', async () => {
  const { store, events } = lockingStore()
  const tokens = new TokenCache({
    store,
    fetchToken: async () => ({ accessToken: 'a', expiresIn: 60 }),
  })
  await tokens.get()
  await settle()
  expect(events).toEqual(['lock', 'set', 'release'])
})

test('the lock is released when the fetch fails', async () => {
  const { store, events } = lockingStore()
  const tokens = new TokenCache({
    store,
    fetchToken: async () => {
      throw new Error('down')
    },
  })
  await expect(tokens.get()).rejects.toThrow()
  await settle()
  expect(events).toEqual(['lock', 'release'])
})

test('the lock is released when the cache is cleared during the fetch (nothing stored)', async () => {
  const { store, events } = lockingStore()
  let release: () => void = () => {}
  const tokens = new TokenCache({
    store,
    fetchToken: () =>
      new Promise((resolve) => {
        release = () => resolve({ accessToken: 'a', expiresIn: 60 })
      }),
  })
  const pending = tokens.get()
  await settle()
  await tokens.clear()
  release()
  expect((await pending).accessToken).toBe('a')
  await settle()
  expect(events).toEqual(['lock', 'release'])
})

test("guards 'a dead lock holder does not stall the fleet' (#10.13): a squatted lock is waited on for about the store's lockTtl, not timeout + 5 s", async () => {
  const inner = memoryStore()
  let fetches = 0
  const store: TokenStore = {
    get: (key) => inner.get(key),
    set: (key, token, ttl) => inner.set(key, token, ttl),
    delete: (key, ifAccessToken) => inner.delete(key, ifAccessToken),
    lock: async () => undefined, // held elsewhere, by a holder that never delivers
    lockTtl: 300,
  }
  const tokens = new TokenCache({
    store,
    timeout: 10_000, // a wait of timeout + 5 s would be 15 s
    fetchToken: async () => {
      fetches++
      return { accessToken: 'own', expiresIn: 60 }
    },
  })
  let timer: NodeJS.Timeout | undefined
  const stalled = new Promise<'stalled'>((resolve) => {
    timer = setTimeout(() => resolve('stalled'), 5_000) // a hang guard, far above 300 ms
  })
  const result = await Promise.race([tokens.get(), stalled])
  clearTimeout(timer)
  expect(result).not.toBe('stalled')
  expect(fetches).toBe(1)
})

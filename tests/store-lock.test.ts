// TokenCache and a store with a lock (the distributed single flight): the lock is
// always released, whichever way the fetch it guards ends.
import { expect, test } from 'vitest'
import { memoryStore, type Token, TokenCache, type TokenStore } from '../lib/index.js'
import { gate, sleep, withTimeout } from './support/async.js'
import { tokenSource } from './support/token-sources.js'

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

const settle = () => sleep(20)

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
  const fetched = gate()
  const tokens = new TokenCache({
    store,
    fetchToken: async () => {
      await fetched.promise
      return { accessToken: 'a', expiresIn: 60 }
    },
  })
  const pending = tokens.get()
  await settle()
  await tokens.clear()
  fetched.open()
  expect((await pending).accessToken).toBe('a')
  await settle()
  expect(events).toEqual(['lock', 'release'])
})

test("guards 'a dead lock holder does not stall the fleet' (#10.13): a squatted lock is waited on for about the store's lockTtl, not timeout + 5 s", async () => {
  const inner = memoryStore()
  const source = tokenSource(() => ({ accessToken: 'own', expiresIn: 60 }))
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
    fetchToken: source.fetchToken,
  })
  // a hang guard, far above 300 ms
  await expect(withTimeout(tokens.get(), 5_000, 'tokens.get() (stalled)')).resolves.toBeDefined()
  expect(source.calls).toHaveLength(1)
})

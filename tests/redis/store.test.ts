// redisStore() against a real redis-server, the same suite for node-redis and ioredis.
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, test, vi } from 'vitest'
import { type RedisClient, redisStore } from '../../lib/stores/redis.js'
import type { Token } from '../../lib/types.js'
import { type ConnectedClient, clientKinds, connectClient } from './fixtures/clients.js'
import { redisKeyName } from './helpers/keys.js'
import { useClient, useRedisServer } from './helpers/setup.js'
import { waitUntil } from './helpers/wait.js'

const redis = useRedisServer()

function token(
  accessToken: string,
  lifetimeMs = 60_000,
  extra: Record<string, unknown> = {},
): Token {
  const now = Date.now()
  return {
    accessToken,
    tokenType: 'Bearer',
    expiresAt: now + lifetimeMs,
    obtainedAt: now,
    ...extra,
  }
}

/** A prefix of its own per test, so tests never see each other's keys. */
function uniquePrefix(): string {
  return `test-${randomBytes(6).toString('hex')}:`
}

async function keysUnder(connected: ConnectedClient, prefix: string): Promise<string[]> {
  const keys = (await connected.command(['KEYS', `${prefix}*`])) as string[]
  return keys.sort()
}

describe.each(clientKinds)('redisStore with %s', (kind) => {
  // Two connections, as two processes would have.
  const a = useClient(kind, redis)
  const b = useClient(kind, redis)

  test('get of a missing key is undefined; set then get returns the token with its extra fields', async () => {
    const store = redisStore({ client: a.client, prefix: uniquePrefix() })
    expect(await store.get('default')).toBeUndefined()
    const stored = token('tok-roundtrip', 60_000, { scope: 'a b', id_token: 'second-token' })
    await store.set('default', stored, 60_000)
    expect(await store.get('default')).toEqual(stored)
  })

  test('a token written by one process is read by another (shared)', async () => {
    const prefix = uniquePrefix()
    const writer = redisStore({ client: a.client, prefix })
    const reader = redisStore({ client: b.client, prefix })
    const stored = token('tok-shared')
    await writer.set('k', stored, 60_000)
    expect(await reader.get('k')).toEqual(stored)
    expect(await reader.get('other-key')).toBeUndefined()
  })

  test('entries carry a TTL equal to the remaining lifetime and expire with it', async () => {
    const prefix = uniquePrefix()
    const store = redisStore({ client: a.client, prefix })
    await store.set('long', token('tok-long'), 1_500.9)
    const [longKey] = await keysUnder(a, `${prefix}token:`)
    const pttl = Number(await a.command(['PTTL', longKey as string]))
    expect(pttl).toBeGreaterThan(1_000)
    expect(pttl).toBeLessThanOrEqual(1_500) // rounded down: never outlives the token

    await store.set('short', token('tok-short'), 120)
    expect((await store.get('short'))?.accessToken).toBe('tok-short')
    await sleep(200)
    expect(await store.get('short')).toBeUndefined()
  })

  test('a ttl of zero or less stores nothing and removes the previous entry', async () => {
    const store = redisStore({ client: a.client, prefix: uniquePrefix() })
    await store.set('k', token('tok-old'), 60_000)
    await store.set('k', token('tok-dead'), 0)
    expect(await store.get('k')).toBeUndefined()
    await store.set('k', token('tok-dead'), -5)
    expect(await store.get('k')).toBeUndefined()
  })

  test('Redis keys hold neither the caller key, a token nor the client secret', async () => {
    const prefix = uniquePrefix()
    const store = redisStore({ client: a.client, prefix })
    const key = 'tenant=acme client_secret=s3cr3t * ? [x] \n'
    await store.set(key, token('tok-in-key-check'), 60_000)
    const release = await store.lock(key, 5_000)
    const keys = await keysUnder(a, prefix)
    expect(keys).toHaveLength(2)
    for (const name of keys) {
      // The hashed key in braces: its hash tag, so a token and its lock share a cluster slot.
      expect(name).toMatch(new RegExp(`^${prefix}(token|lock):\\{[0-9a-f]{64}\\}$`))
      expect(name).not.toContain('s3cr3t')
      expect(name).not.toContain('tok-in-key-check')
    }
    await release?.()
  })

  test('the default prefix is "undici-access-token:"', async () => {
    const store = redisStore({ client: a.client })
    const key = `default-prefix-${randomBytes(4).toString('hex')}`
    await store.set(key, token('tok-default-prefix'), 5_000)
    const keys = await keysUnder(a, 'undici-access-token:token:')
    expect(keys.length).toBeGreaterThanOrEqual(1)
    expect(await store.delete(key)).toBe(true)
  })

  test('delete without a token deletes whatever is there; true only when it deleted', async () => {
    const store = redisStore({ client: a.client, prefix: uniquePrefix() })
    await store.set('k', token('tok-a'), 60_000)
    expect(await store.delete('k')).toBe(true)
    expect(await store.delete('k')).toBe(false)
    expect(await store.get('k')).toBeUndefined()
  })

  test('delete-if-equal deletes only the rejected token', async () => {
    const store = redisStore({ client: a.client, prefix: uniquePrefix() })
    await store.set('k', token('tok-new'), 60_000)
    expect(await store.delete('k', 'tok-old')).toBe(false)
    expect((await store.get('k'))?.accessToken).toBe('tok-new')
    expect(await store.delete('k', 'tok-new')).toBe(true)
    expect(await store.get('k')).toBeUndefined()
    expect(await store.delete('k', 'tok-new')).toBe(false)
  })

  test('delete-if-equal is atomic: a late 401 on one process never evicts the token another just stored', async () => {
    const prefix = uniquePrefix()
    const writer = redisStore({ client: a.client, prefix })
    const revoker = redisStore({ client: b.client, prefix })
    await writer.set('k', token('tok-0'), 60_000)
    for (let n = 1; n <= 200; n++) {
      // Process A stores its renewal while process B evicts the token it saw rejected.
      const [, deleted] = await Promise.all([
        writer.set('k', token(`tok-${n}`), 60_000),
        revoker.delete('k', `tok-${n - 1}`),
      ])
      const current = await writer.get('k')
      // Either B came first (deleted tok-(n-1), then A stored tok-n) or A did (B found
      // tok-n and left it). Never: tok-n gone.
      expect(current?.accessToken, `round ${n}, deleted=${deleted}`).toBe(`tok-${n}`)
    }
  })

  test('lock: SET NX — taken once, held elsewhere → undefined, released → free again', async () => {
    const prefix = uniquePrefix()
    const mine = redisStore({ client: a.client, prefix })
    const theirs = redisStore({ client: b.client, prefix })
    const release = await mine.lock('k', 5_000)
    expect(release).toBeTypeOf('function')
    expect(await theirs.lock('k', 5_000)).toBeUndefined()
    expect(await mine.lock('k', 5_000)).toBeUndefined() // not reentrant: one fetch per key
    expect(await theirs.lock('another-key', 5_000)).toBeTypeOf('function')
    await release?.()
    const next = await theirs.lock('k', 5_000)
    expect(next).toBeTypeOf('function')
    await next?.()
  })

  test('lock: PX — expires after its ttl, so a dead holder is taken over', async () => {
    const prefix = uniquePrefix()
    const dead = redisStore({ client: a.client, prefix })
    const other = redisStore({ client: b.client, prefix })
    expect(await dead.lock('k', 150)).toBeTypeOf('function')
    const [lockKey] = await keysUnder(a, `${prefix}lock:`)
    const pttl = Number(await a.command(['PTTL', lockKey as string]))
    expect(pttl).toBeGreaterThan(0)
    expect(pttl).toBeLessThanOrEqual(150)
    expect(await other.lock('k', 150)).toBeUndefined()
    await sleep(200)
    expect(await other.lock('k', 5_000)).toBeTypeOf('function')
  })

  test('lock: release deletes only your own lock (compare-and-delete), and twice is harmless', async () => {
    const prefix = uniquePrefix()
    const slow = redisStore({ client: a.client, prefix })
    const other = redisStore({ client: b.client, prefix })
    const lateRelease = await slow.lock('k', 100)
    await sleep(150) // the slow holder's lock expires …
    const otherRelease = await other.lock('k', 5_000) // … and another process takes it
    expect(otherRelease).toBeTypeOf('function')
    await lateRelease?.() // the slow holder finishes: must not free the other's lock
    await lateRelease?.()
    expect(await slow.lock('k', 5_000)).toBeUndefined()
    // The other's lock is still there, a lease its holder renews (lockTtl: 1 s by default).
    const [lockKey] = await keysUnder(a, `${prefix}lock:`)
    expect(Number(await a.command(['PTTL', lockKey as string]))).toBeGreaterThan(0)
    await otherRelease?.()
    expect(await keysUnder(a, `${prefix}lock:`)).toEqual([])
  })

  test('lock: a lease of lockTtl, renewed while held — it outlives many leases, and lapses within one once its holder stops', async () => {
    const prefix = uniquePrefix()
    const holder = redisStore({ client: a.client, prefix, lockTtl: 300 })
    const other = redisStore({ client: b.client, prefix, lockTtl: 300 })
    const release = await holder.lock('k', 5_000)
    expect(release).toBeTypeOf('function')
    const [lockKey] = await keysUnder(a, `${prefix}lock:`)
    const values = new Set<unknown>()
    for (let i = 0; i < 8; i++) {
      await sleep(100)
      const pttl = Number(await a.command(['PTTL', lockKey as string]))
      expect(pttl).toBeGreaterThan(0) // 800 ms: well past a 300 ms lease, still held
      expect(pttl).toBeLessThanOrEqual(300)
      values.add(await a.command(['GET', lockKey as string]))
    }
    expect(values.size).toBeGreaterThan(1) // every renewal writes a new value: waiters see it live
    expect(await other.lock('k', 5_000)).toBeUndefined()
    await release?.()
    expect(await keysUnder(a, `${prefix}lock:`)).toEqual([])
  })

  test('lock: renewals stop at the ttl asked for — the lock never outlives it', async () => {
    const prefix = uniquePrefix()
    const holder = redisStore({ client: a.client, prefix, lockTtl: 300 })
    expect(await holder.lock('k', 500)).toBeTypeOf('function') // never released
    await sleep(300)
    expect(await keysUnder(a, `${prefix}lock:`)).toHaveLength(1)
    await sleep(350)
    expect(await keysUnder(a, `${prefix}lock:`)).toEqual([])
  })

  test('lock: a lock nobody renews (a long TTL, a dead or old holder) is taken over by one waiter after a lease', async () => {
    const prefix = uniquePrefix()
    const waiters = [a, b].map((c) => redisStore({ client: c.client, prefix, lockTtl: 300 }))
    // A lock written as an older version did, or by hand: 60 s, never renewed.
    const name = redisKeyName(prefix, 'lock', 'k')
    expect(await a.command(['SET', name, 'squatter', 'PX', '60000'])).toBe('OK')
    const started = performance.now()
    let winners = 0
    while (winners === 0 && performance.now() - started < 3_000) {
      const releases = await Promise.all(waiters.map((store) => store.lock('k', 5_000)))
      winners = releases.filter((release) => release !== undefined).length
      expect(winners).toBeLessThanOrEqual(1) // one takeover, never two holders
      for (const release of releases) await release?.()
      await sleep(25)
    }
    expect(winners).toBe(1)
    expect(performance.now() - started).toBeGreaterThanOrEqual(250) // not before a lease without renewal
  })

  test('lockTtl overrides the ttl TokenCache asks for', async () => {
    const prefix = uniquePrefix()
    const store = redisStore({ client: a.client, prefix, lockTtl: 700 })
    const release = await store.lock('k', 15_000)
    const [lockKey] = await keysUnder(a, `${prefix}lock:`)
    const pttl = Number(await a.command(['PTTL', lockKey as string]))
    expect(pttl).toBeGreaterThan(500)
    expect(pttl).toBeLessThanOrEqual(700)
    await release?.()
  })

  test('clear() deletes the tokens under its prefix only, and leaves locks alone', async () => {
    const prefix = uniquePrefix()
    const store = redisStore({ client: a.client, prefix })
    const neighbour = redisStore({ client: a.client, prefix: `${prefix}x*` })
    for (let i = 0; i < 30; i++) await store.set(`k${i}`, token(`tok-${i}`), 60_000)
    await neighbour.set('k0', token('tok-neighbour'), 60_000)
    const release = await store.lock('k0', 5_000)
    await store.clear()
    expect(await keysUnder(a, `${prefix}token:`)).toEqual([])
    expect(await keysUnder(a, `${prefix}lock:`)).toHaveLength(1)
    expect((await neighbour.get('k0'))?.accessToken).toBe('tok-neighbour')
    await release?.()
  })

  test('anything in Redis that is not a token written by the store is a miss, never a throw', async () => {
    const prefix = uniquePrefix()
    const store = redisStore({ client: a.client, prefix })
    await store.set('k', token('tok-x'), 60_000)
    const [tokenKey] = await keysUnder(a, `${prefix}token:`)
    const key = tokenKey as string
    const stored = (await a.command(['GET', key])) as string
    const fingerprint = stored.slice(0, stored.indexOf('.'))
    for (const garbage of [
      'garbage',
      'a.b',
      `${fingerprint}.p1.{not json`,
      `${fingerprint}.p1.[1,2]`,
      `${fingerprint}.p1.{"accessToken":"tok-x"}`,
      `${fingerprint}.p1.${JSON.stringify({ ...token('tok-x'), expiresAt: 'soon' })}`,
      `wrong-fingerprint.p1.${JSON.stringify(token('tok-x'))}`,
      `${fingerprint}.e1.AAAA`,
      `${fingerprint}.zz.${JSON.stringify(token('tok-x'))}`,
    ]) {
      await a.command(['SET', key, garbage])
      await expect(store.get('k'), garbage).resolves.toBeUndefined()
    }
    await a.command(['DEL', key])
    await a.command(['HSET', key, 'field', 'value']) // another type under the name: an error → a miss upstream
    await expect(store.get('k')).rejects.toThrow(/WRONGTYPE/)
    await a.command(['DEL', key])
  })

  describe('encryption at rest (AES-256-GCM)', () => {
    const key = randomBytes(32)
    const keyBase64 = key.toString('base64')
    const secretToken = () =>
      token(`tok-secret-${randomBytes(8).toString('hex')}`, 60_000, {
        id_token: 'eyJ-second-token-value',
        refreshToken: 'refresh-token-value',
      })

    /** An encrypting store of its own with a secret token stored under 'k', and that entry's Redis name. */
    async function storedSecret() {
      const prefix = uniquePrefix()
      const store = redisStore({ client: a.client, prefix, encryptionKey: key })
      const stored = secretToken()
      await store.set('k', stored, 60_000)
      const [tokenKey] = await keysUnder(a, `${prefix}token:`)
      return { store, stored, tokenKey: tokenKey as string }
    }

    test('the stored value contains neither the token nor its other fields', async () => {
      const { store, stored, tokenKey } = await storedSecret()
      const raw = (await a.command(['GET', tokenKey])) as string
      expect(raw).not.toContain(stored.accessToken)
      expect(raw).not.toContain('eyJ-second-token-value')
      expect(raw).not.toContain('refresh-token-value')
      expect(raw).not.toContain('Bearer')
      expect(raw).toMatch(/^[\w-]{43}\.e1\.[\w-]+$/)
      expect(await store.get('k')).toEqual(stored)
    })

    test('the same key as bytes or as base64 reads the same values', async () => {
      const prefix = uniquePrefix()
      const stored = secretToken()
      await redisStore({ client: a.client, prefix, encryptionKey: key }).set('k', stored, 60_000)
      const reader = redisStore({ client: b.client, prefix, encryptionKey: keyBase64 })
      expect(await reader.get('k')).toEqual(stored)
    })

    test('without the key, or with another key, a value is a miss, not a crash', async () => {
      const prefix = uniquePrefix()
      await redisStore({ client: a.client, prefix, encryptionKey: key }).set(
        'k',
        secretToken(),
        60_000,
      )
      const wrongKey = redisStore({ client: b.client, prefix, encryptionKey: randomBytes(32) })
      const noKey = redisStore({ client: b.client, prefix })
      await expect(wrongKey.get('k')).resolves.toBeUndefined()
      await expect(noKey.get('k')).resolves.toBeUndefined()
      // …and an encrypting store does not take a plain value either (it could be planted).
      const plainPrefix = uniquePrefix()
      await redisStore({ client: a.client, prefix: plainPrefix }).set('k', secretToken(), 60_000)
      const encrypting = redisStore({ client: b.client, prefix: plainPrefix, encryptionKey: key })
      await expect(encrypting.get('k')).resolves.toBeUndefined()
    })

    test('a value tampered with, or copied under another key, is a miss', async () => {
      const prefix = uniquePrefix()
      const store = redisStore({ client: a.client, prefix, encryptionKey: key })
      await store.set('one', secretToken(), 60_000)
      await store.set('two', secretToken(), 60_000)
      const oneKey = `${prefix}token:${(await keysUnder(a, `${prefix}token:`)).map((k) => k.slice(`${prefix}token:`.length)).find(Boolean)}`
      const raw = (await a.command(['GET', oneKey])) as string
      const flipped = `${raw.slice(0, -2)}${raw.at(-2) === 'A' ? 'B' : 'A'}${raw.at(-1)}`
      await a.command(['SET', oneKey, flipped])
      const results = [await store.get('one'), await store.get('two')]
      expect(results.filter((t) => t === undefined)).toHaveLength(1)
      // Copy one key's (valid) value under the other: the key name is authenticated data.
      const keys = await keysUnder(a, `${prefix}token:`)
      const [first, second] = keys as [string, string]
      await store.set('one', secretToken(), 60_000)
      await store.set('two', secretToken(), 60_000)
      await a.command(['SET', second, (await a.command(['GET', first])) as string])
      const afterCopy = [await store.get('one'), await store.get('two')]
      expect(afterCopy.filter((t) => t === undefined)).toHaveLength(1)
    })

    test('every write is a new ciphertext, and delete-if-equal still matches by fingerprint', async () => {
      const { store, stored, tokenKey } = await storedSecret()
      const first = await a.command(['GET', tokenKey])
      await store.set('k', stored, 60_000)
      const second = await a.command(['GET', tokenKey])
      expect(second).not.toBe(first)
      expect(await store.delete('k', 'some-other-token')).toBe(false)
      expect(await store.delete('k', stored.accessToken)).toBe(true)
      expect(await store.get('k')).toBeUndefined()
    })

    test('the fingerprint is keyed: without the key it is not the SHA-256 of the token', async () => {
      const prefix = uniquePrefix()
      const stored = secretToken()
      await redisStore({ client: a.client, prefix, encryptionKey: key }).set('k', stored, 60_000)
      await redisStore({ client: a.client, prefix: `${prefix}plain:` }).set('k', stored, 60_000)
      const [encryptedKey] = await keysUnder(a, `${prefix}token:`)
      const [plainKey] = await keysUnder(a, `${prefix}plain:token:`)
      const encrypted = (await a.command(['GET', encryptedKey as string])) as string
      const plain = (await a.command(['GET', plainKey as string])) as string
      expect(encrypted.split('.')[0]).not.toBe(plain.split('.')[0])
      // Another key's store cannot delete it either.
      const wrong = redisStore({ client: b.client, prefix, encryptionKey: randomBytes(32) })
      expect(await wrong.delete('k', stored.accessToken)).toBe(false)
    })

    test('a key that is not 32 bytes is refused at once, without showing it', () => {
      for (const bad of [
        randomBytes(16),
        randomBytes(31),
        'c2hvcnQ=',
        'not base64 at all!',
        randomBytes(32).toString('hex'),
      ]) {
        let error: unknown
        try {
          redisStore({ client: a.client, encryptionKey: bad })
        } catch (caught) {
          error = caught
        }
        expect(error, String(bad)).toBeInstanceOf(Error)
        expect((error as Error).message).toMatch(/32 bytes/)
        const shown = typeof bad === 'string' ? bad : bad.toString('base64')
        expect((error as Error).message).not.toContain(shown)
      }
    })
  })
})

describe('option and client checks', () => {
  test('a client that is neither node-redis nor ioredis is refused', () => {
    expect(() => redisStore({ client: {} as RedisClient })).toThrow(TypeError)
    expect(() => redisStore({ client: undefined as unknown as RedisClient, prefix: 'x' })).toThrow(
      TypeError,
    )
  })

  test('a prefix with a lone or empty "{" is refused: a token and its lock would land in different cluster slots', () => {
    const client = { isReady: true, sendCommand: async () => null }
    for (const prefix of ['app{', 'app{}:', 'a}b{:']) {
      expect(() => redisStore({ client, prefix }), prefix).toThrow(/hash slot/)
    }
    // A whole tag of its own is fine: every key in one slot.
    expect(() => redisStore({ client, prefix: '{uat}:' })).not.toThrow()
    expect(() => redisStore({ client, prefix: 'x}y:' })).not.toThrow()
  })

  test('lockTtl must be a positive number of ms', () => {
    const client = { isReady: true, sendCommand: async () => null }
    for (const lockTtl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => redisStore({ client, lockTtl })).toThrow(RangeError)
    }
  })

  test('a node-redis client that is not ready is not sent commands (no offline queue growth)', async () => {
    const sendCommand = vi.fn(async () => null)
    const store = redisStore({ client: { isReady: false, sendCommand } })
    await expect(store.get('k')).rejects.toThrow(/not connected/)
    await expect(store.set('k', token('tok'), 1_000)).rejects.toThrow(/not connected/)
    await expect(store.delete('k', 'tok')).rejects.toThrow(/not connected/)
    await expect(store.lock('k', 1_000)).rejects.toThrow(/not connected/)
    await expect(store.clear()).rejects.toThrow(/not connected/)
    expect(sendCommand).not.toHaveBeenCalled()
  })

  test('an ioredis client that is reconnecting is not sent commands', async () => {
    const call = vi.fn(async () => null)
    const store = redisStore({ client: { status: 'reconnecting', call } })
    await expect(store.get('k')).rejects.toThrow(/not connected \(reconnecting\)/)
    expect(call).not.toHaveBeenCalled()
  })

  test("a client error never carries the stored value (ioredis's ReplyError has command.args)", async () => {
    const call = vi.fn(async (...args: string[]) => {
      throw Object.assign(new Error(`OOM while running ${args.join(' ')}`), { command: { args } })
    })
    const store = redisStore({ client: { status: 'ready', call } })
    const error = await store
      .set('k', token('tok-must-not-leak-0123456789'), 60_000)
      .catch((e) => e)
    expect(error).toBeInstanceOf(Error)
    expect(error.message).toMatch(/^Redis SET failed: OOM/)
    expect(error.message).not.toContain('tok-must-not-leak')
    expect(error.cause).toBeUndefined()
    expect(JSON.stringify(error)).not.toContain('tok-must-not-leak')
  })
})

// Last: it stops and restarts the file's redis-server.
describe.each(clientKinds)('Redis outage with %s', (kind) => {
  test('while Redis is down every call rejects at once (no queueing); after a restart the store works again', async () => {
    // The listener the README asks for: without it node-redis's 'error' event ends the process.
    const connected = await connectClient(kind, redis.port, () => {})
    try {
      const store = redisStore({ client: connected.client, prefix: uniquePrefix() })
      await store.set('k', token('tok-before'), 60_000)
      expect((await store.get('k'))?.accessToken).toBe('tok-before')

      await redis.stop()
      await waitUntil(() => !connected.isReady(), 2_000)
      const calls: [string, () => Promise<unknown>][] = [
        ['get', () => store.get('k')],
        ['set', () => store.set('k', token('tok-during'), 60_000)],
        ['delete', () => store.delete('k', 'tok-before')],
        ['lock', () => store.lock('k', 5_000)],
        ['clear', () => store.clear()],
      ]
      for (const [name, call] of calls) {
        const started = performance.now()
        await expect(call(), name).rejects.toThrow()
        expect(performance.now() - started, name).toBeLessThan(100)
      }
      // Many misses during an outage must not pile up anywhere.
      const burst = await Promise.allSettled(Array.from({ length: 500 }, () => store.get('k')))
      expect(burst.every((result) => result.status === 'rejected')).toBe(true)

      await redis.start()
      await waitUntil(() => connected.isReady(), 5_000)
      expect(await store.get('k')).toBeUndefined() // Redis came back empty (no persistence)
      await store.set('k', token('tok-after'), 60_000)
      expect((await store.get('k'))?.accessToken).toBe('tok-after')
      const release = await store.lock('k', 5_000)
      expect(release).toBeTypeOf('function')
      await release?.()
    } finally {
      await connected.close()
    }
  })
})

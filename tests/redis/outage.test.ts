// Redis stops mid-run: requests keep succeeding with local fetches (a store error
// is a miss); Redis restarts on the same port: the replicas share one token again.
import { randomBytes } from 'node:crypto'
import { beforeAll, describe, expect, test } from 'vitest'
import { clientKinds } from './fixtures/clients.js'
import { useRedisFleet, useWorkers } from './helpers/setup.js'
import { type BurstResult, waitForRedis } from './helpers/workers.js'

const replicas = 4
const concurrent = 25

const fleet = useRedisFleet({ tokenDelay: 100 })

/** Every token issued so far is revoked: the API answers 401 to it. */
function revokeAll(): void {
  const n = fleet.endpoint.issued.length
  fleet.api.accept = (authorization) => {
    const match = /^Bearer token-(\d+)$/.exec(authorization ?? '')
    return match !== null && Number(match[1]) > n
  }
}

function expectAllOk(results: BurstResult[]): void {
  for (const [index, result] of results.entries()) {
    expect(result.errors, `replica ${index}`).toEqual([])
    expect(result.statuses, `replica ${index}`).toEqual(Array(concurrent).fill(200))
  }
}

describe.each(clientKinds)('with %s', (kind) => {
  beforeAll(() => {
    revokeAll() // the other client's tokens
  })

  const workers = useWorkers(replicas, () =>
    fleet.workerConfig(kind, 'outage', {
      encryptionKey: randomBytes(32).toString('base64'),
      cache: { minRenewalInterval: 0 },
    }),
  )

  test('shared → Redis stopped: local fetches, every request succeeds → Redis restarted: shared again', async () => {
    let start = fleet.endpoint.requests.length

    // Shared: one token for all replicas.
    expectAllOk(await burstAll())
    expect(fleet.endpoint.requests.length - start).toBe(1)

    // Redis goes away mid-run. Tokens in memory keep serving without touching it…
    await fleet.redis.stop()
    start = fleet.endpoint.requests.length
    expectAllOk(await burstAll())
    expect(fleet.endpoint.requests.length - start).toBe(0)
    // …and when a token must be renewed, each replica fetches its own, nobody fails.
    revokeAll()
    const began = performance.now()
    expectAllOk(await burstAll())
    const elapsed = performance.now() - began
    expect(fleet.endpoint.requests.length - start).toBe(replicas)
    expect(elapsed).toBeLessThan(3_000) // no waiting on a reconnect queue or a dead lock

    await restartAndExpectSharing()
    expect(workers.every((w) => w.alive())).toBe(true)
  })

  test('Redis dies while the replicas are renewing: commands in flight fail, requests do not', async () => {
    const start = fleet.endpoint.requests.length
    revokeAll()
    const [results] = await Promise.all([burstAll(), fleet.redis.stop()])
    expectAllOk(results)
    const fetched = fleet.endpoint.requests.length - start
    expect(fetched).toBeGreaterThanOrEqual(1)
    expect(fetched).toBeLessThanOrEqual(replicas)

    await restartAndExpectSharing()
  })

  async function burstAll(): Promise<BurstResult[]> {
    return Promise.all(workers.map((w) => w.burst(concurrent)))
  }

  /** Redis is back (empty, same port): the clients reconnect and the replicas share one token again. */
  async function restartAndExpectSharing(): Promise<void> {
    await fleet.redis.start()
    await waitForRedis(workers, 5_000)
    const start = fleet.endpoint.requests.length
    revokeAll()
    expectAllOk(await burstAll())
    expect(fleet.endpoint.requests.length - start).toBe(1)
  }
})

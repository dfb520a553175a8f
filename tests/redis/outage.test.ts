// Redis stops mid-run: requests keep succeeding with local fetches (a store error
// is a miss); Redis restarts on the same port: the replicas share one token again.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  type ApiServer,
  startApi,
  startTokenEndpoint,
  type TokenEndpoint,
} from '../support/servers.js'
import { clientKinds } from './fixtures/clients.js'
import { type RedisServer, startRedisServer } from './helpers/redis-server.js'
import {
  type BurstResult,
  startLimit,
  startWorkers,
  stopWorkers,
  type Worker,
  waitForRedis,
} from './helpers/workers.js'

const replicas = 4
const concurrent = 25

let redis: RedisServer
let api: ApiServer
let endpoint: TokenEndpoint

beforeAll(async () => {
  ;[redis, api, endpoint] = await Promise.all([
    startRedisServer(),
    startApi(),
    startTokenEndpoint(),
  ])
  const issue = endpoint.respond
  endpoint.respond = (n) => ({ ...issue(n), delay: 100 })
})

afterAll(async () => {
  await Promise.all([redis?.dispose(), api?.close(), endpoint?.close()])
})

/** Every token issued so far is revoked: the API answers 401 to it. */
function revokeAll(): void {
  const n = endpoint.issued.length
  api.accept = (authorization) => {
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
  let workers: Worker[]

  beforeAll(async () => {
    revokeAll() // the other client's tokens
    workers = await startWorkers(replicas, {
      kind,
      redisPort: redis.port,
      api: api.origin,
      tokenUrl: `${endpoint.origin}/token`,
      prefix: `outage-${kind}-${randomBytes(4).toString('hex')}:`,
      encryptionKey: randomBytes(32).toString('base64'),
      cache: { minRenewalInterval: 0 },
    })
  }, startLimit + 10_000)

  afterAll(async () => {
    await stopWorkers(workers)
  })

  test('shared → Redis stopped: local fetches, every request succeeds → Redis restarted: shared again', async () => {
    let start = endpoint.requests.length

    // Shared: one token for all replicas.
    expectAllOk(await burstAll())
    expect(endpoint.requests.length - start).toBe(1)

    // Redis goes away mid-run. Tokens in memory keep serving without touching it…
    await redis.stop()
    start = endpoint.requests.length
    expectAllOk(await burstAll())
    expect(endpoint.requests.length - start).toBe(0)
    // …and when a token must be renewed, each replica fetches its own, nobody fails.
    revokeAll()
    const began = performance.now()
    expectAllOk(await burstAll())
    const elapsed = performance.now() - began
    expect(endpoint.requests.length - start).toBe(replicas)
    expect(elapsed).toBeLessThan(3_000) // no waiting on a reconnect queue or a dead lock

    // Redis is back (empty, same port): the clients reconnect and the replicas share again.
    await redis.start()
    await waitForRedis(workers, 5_000)
    start = endpoint.requests.length
    revokeAll()
    expectAllOk(await burstAll())
    expect(endpoint.requests.length - start).toBe(1)
    expect(workers.every((w) => w.alive())).toBe(true)
  })

  test('Redis dies while the replicas are renewing: commands in flight fail, requests do not', async () => {
    let start = endpoint.requests.length
    revokeAll()
    const [results] = await Promise.all([burstAll(), redis.stop()])
    expectAllOk(results)
    const fetched = endpoint.requests.length - start
    expect(fetched).toBeGreaterThanOrEqual(1)
    expect(fetched).toBeLessThanOrEqual(replicas)

    await redis.start()
    await waitForRedis(workers, 5_000)
    start = endpoint.requests.length
    revokeAll()
    expectAllOk(await burstAll())
    expect(endpoint.requests.length - start).toBe(1)
  })

  async function burstAll(): Promise<BurstResult[]> {
    return Promise.all(workers.map((w) => w.burst(concurrent)))
  }
})

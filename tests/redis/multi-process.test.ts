// Eight replicas — separate Node processes, each with its own interceptor, TokenCache,
// Redis client and redisStore from the built package — share one token.
import { randomBytes } from 'node:crypto'
import { beforeAll, describe, expect, test } from 'vitest'
import { clientKinds } from './fixtures/clients.js'
import { useRedisFleet, useWorkers } from './helpers/setup.js'
import { requesterOf, type Worker } from './helpers/workers.js'

const replicas = 8
const concurrent = 100

// A token endpoint that takes a moment, as real ones do: every replica is waiting
// on a cold cache while the first fetch is in flight.
const fleet = useRedisFleet({ tokenDelay: 200 })

/** Accept only tokens issued after the `n`th: tokens 1…n are revoked. */
function revokeUpTo(n: number): void {
  fleet.api.accept = (authorization) => {
    const match = /^Bearer token-(\d+)$/.exec(authorization ?? '')
    return match !== null && Number(match[1]) > n
  }
}

function expectAllOk(results: { statuses: number[]; errors: string[] }[], perWorker: number): void {
  for (const [index, result] of results.entries()) {
    expect(result.errors, `replica ${index}`).toEqual([])
    expect(result.statuses, `replica ${index}`).toEqual(Array(perWorker).fill(200))
  }
}

describe.each(clientKinds)(`${replicas} replicas sharing redisStore with %s`, (kind) => {
  let revoked = 0
  let before = 0

  beforeAll(() => {
    fleet.api.accept = () => true
    revokeUpTo(fleet.endpoint.issued.length) // tokens of earlier suites are dead
    revoked = fleet.endpoint.issued.length
    before = fleet.endpoint.requests.length
  })

  const workers = useWorkers(replicas, () =>
    fleet.workerConfig(kind, 'multi', {
      encryptionKey: randomBytes(32).toString('base64'),
      // Two revocations a moment apart in this test: allow the second forced renewal.
      cache: { minRenewalInterval: 0 },
    }),
  )

  test(`cold cache: ${replicas} × ${concurrent} concurrent requests → exactly 1 token request, all 200`, async () => {
    const results = await Promise.all(workers.map((w) => w.burst(concurrent)))
    expectAllOk(results, concurrent)
    expect(fleet.endpoint.requests.length - before).toBe(1)
  })

  test('revocation seen by one replica → one renewal; the others pick it up from Redis', async () => {
    const start = fleet.endpoint.requests.length
    revoked = fleet.endpoint.issued.length
    revokeUpTo(revoked)
    const [first, ...others] = workers as [Worker, ...Worker[]]
    expectAllOk([await first.burst(20)], 20)
    expect(fleet.endpoint.requests.length - start).toBe(1)
    // The others still hold the revoked token: their 401s find the renewed one in Redis.
    expectAllOk(await Promise.all(others.map((w) => w.burst(20))), 20)
    expect(fleet.endpoint.requests.length - start).toBe(1)
  })

  test('revocation seen by all replicas at once → still one renewal across all', async () => {
    const start = fleet.endpoint.requests.length
    revoked = fleet.endpoint.issued.length
    revokeUpTo(revoked)
    expectAllOk(await Promise.all(workers.map((w) => w.burst(20))), 20)
    expect(fleet.endpoint.requests.length - start).toBe(1)
    expect(
      new Set(fleet.endpoint.requests.slice(start).map((r) => requesterOf(r.headers.authorization)))
        .size,
    ).toBe(1)
    expect(workers.every((w) => w.alive())).toBe(true)
  })
})

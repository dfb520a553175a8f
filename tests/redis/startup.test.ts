// Fresh replicas get requests before their Redis client has finished connecting (the
// README's ioredis example never waits for 'ready'; node-redis with connect() not
// awaited): they wait for that first connection and still share one token.
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, test } from 'vitest'
import { clientKinds } from './fixtures/clients.js'
import { useRedisFleet } from './helpers/setup.js'
import { startLimit, startWorkers, stopWorkers, type Worker } from './helpers/workers.js'

const replicas = 8
const concurrent = 100

const fleet = useRedisFleet({ tokenDelay: 200 })

describe.each(clientKinds)('%s', (kind) => {
  let workers: Worker[] | undefined

  afterAll(async () => {
    await stopWorkers(workers)
  })

  test(
    `${replicas} fresh replicas × ${concurrent} requests sent before their client is ready → exactly 1 token request, all 200 (the first connection is waited for)`,
    async () => {
      const before = fleet.endpoint.requests.length
      workers = await startWorkers(
        replicas,
        fleet.workerConfig(kind, 'startup', {
          encryptionKey: randomBytes(32).toString('base64'),
          connect: 'background',
          startBurst: concurrent,
        }),
      )
      const results = await Promise.all(workers.map((w) => w.startBurst()))
      for (const [index, result] of results.entries()) {
        expect(result.errors, `replica ${index}`).toEqual([])
        expect(result.statuses, `replica ${index}`).toEqual(Array(concurrent).fill(200))
        // The scenario itself: every burst began while the client was still connecting.
        expect(result.readyAtStart, `replica ${index}`).toBe(false)
      }
      expect(fleet.endpoint.requests.length - before).toBe(1)
    },
    startLimit + 20_000,
  )
})

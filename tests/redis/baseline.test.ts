// The baseline for multi-process.test.ts: eight replicas without redisStore (each
// with the default memoryStore) make one token request each on a cold cache.
import { expect, test } from 'vitest'
import { useRedisFleet } from './helpers/setup.js'
import { startLimit, startWorkers, stopWorkers } from './helpers/workers.js'

const replicas = 8
const concurrent = 100

// The same API and token endpoint as multi-process.test.ts, and no redis-server.
const fleet = useRedisFleet({ tokenDelay: 200, redis: false })

test(
  `baseline without redisStore: ${replicas} replicas × ${concurrent} requests → one token request per replica`,
  async () => {
    const { api, endpoint } = fleet
    const before = endpoint.requests.length
    const workers = await startWorkers(replicas, {
      kind: 'memory',
      redisPort: 0,
      api: api.origin,
      tokenUrl: endpoint.tokenUrl,
      prefix: '',
    })
    try {
      const results = await Promise.all(workers.map((w) => w.burst(concurrent)))
      for (const [index, result] of results.entries()) {
        expect(result.errors, `replica ${index}`).toEqual([])
        expect(result.statuses, `replica ${index}`).toEqual(Array(concurrent).fill(200))
      }
      expect(endpoint.requests.length - before).toBe(replicas)
    } finally {
      await stopWorkers(workers)
    }
  },
  startLimit + 20_000,
)

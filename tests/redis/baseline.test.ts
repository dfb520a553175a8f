// The baseline for multi-process.test.ts: eight replicas without redisStore (each
// with the default memoryStore) make one token request each on a cold cache.
import { afterAll, beforeAll, expect, test } from 'vitest'
import {
  type ApiServer,
  startApi,
  startTokenEndpoint,
  type TokenEndpoint,
} from '../support/servers.js'
import { startLimit, startWorkers, stopWorkers } from './helpers/workers.js'

const replicas = 8
const concurrent = 100

let api: ApiServer
let endpoint: TokenEndpoint

beforeAll(async () => {
  ;[api, endpoint] = await Promise.all([startApi(), startTokenEndpoint()])
  const issue = endpoint.respond
  endpoint.respond = (n) => ({ ...issue(n), delay: 200 })
})

afterAll(async () => {
  await Promise.all([api?.close(), endpoint?.close()])
})

test(
  `baseline without redisStore: ${replicas} replicas × ${concurrent} requests → one token request per replica`,
  async () => {
    const before = endpoint.requests.length
    const workers = await startWorkers(replicas, {
      kind: 'memory',
      redisPort: 0,
      api: api.origin,
      tokenUrl: `${endpoint.origin}/token`,
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

// The replica holding the fetch lock dies mid-fetch: the lock expires after lockTtl
// and another replica takes over; no request on a surviving replica fails.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type ApiServer, startApi, startServer, type TestServer } from '../support/servers.js'
import { clientKinds } from './fixtures/clients.js'
import { useRedisServer, useWorkers } from './helpers/setup.js'
import { requesterOf } from './helpers/workers.js'

const lockTtl = 1_000
const replicas = 4

const redis = useRedisServer()
let api: ApiServer
let tokenServer: TestServer
/** Token requests: who asked and when (performance.now()). */
let requests: { requester: string; at: number }[] = []
/** Answers the first token request never: its replica is killed while it waits. */
let releaseHeld: () => void = () => {}

beforeAll(async () => {
  api = await startApi()
  const held = new Promise<void>((resolve) => {
    releaseHeld = resolve
  })
  tokenServer = await startServer(async (req, res) => {
    requests.push({ requester: requesterOf(req.headers.authorization), at: performance.now() })
    const n = requests.length
    if (n === 1) await held
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ access_token: `token-${n}`, token_type: 'Bearer', expires_in: 3600 }))
  })
})

afterAll(async () => {
  releaseHeld()
  await Promise.all([api?.close(), tokenServer?.close()])
})

describe.each(clientKinds)('with %s', (kind) => {
  beforeAll(() => {
    requests = []
  })

  const workers = useWorkers(replicas, () => ({
    kind,
    redisPort: redis.port,
    api: api.origin,
    tokenUrl: `${tokenServer.origin}/token`,
    prefix: `takeover-${kind}-${randomBytes(4).toString('hex')}:`,
    lockTtl,
  }))

  test(`the lock holder is killed mid-fetch → another replica takes over within lockTtl (${lockTtl} ms); no request fails`, async () => {
    const bursts = workers.map((w) => w.burst(50).catch((error: Error) => error))
    const deadline = Date.now() + 5_000
    while (requests.length === 0 && Date.now() < deadline) await sleep(5)
    const first = requests[0]
    const holder = workers.find((w) => `worker-${w.index}` === first?.requester)
    if (first === undefined || holder === undefined) {
      throw new Error(`no lock holder found (token requests: ${JSON.stringify(requests)})`)
    }
    const killed = once(holder.child, 'exit')
    holder.child.kill('SIGKILL')
    await killed

    const results = await Promise.all(bursts)
    for (const [index, result] of results.entries()) {
      if (workers[index] === holder) {
        expect(result).toBeInstanceOf(Error) // it died with its requests
        continue
      }
      expect(result, `replica ${index}`).not.toBeInstanceOf(Error)
      const { statuses, errors } = result as { statuses: number[]; errors: string[] }
      expect(errors, `replica ${index}`).toEqual([])
      expect(statuses, `replica ${index}`).toEqual(Array(50).fill(200))
    }
    // One takeover: exactly one more token request, by another replica, once the lock expired.
    expect(requests).toHaveLength(2)
    const takeover = requests[1] ?? { requester: '?', at: Number.NaN }
    expect(takeover.requester).not.toBe(first.requester)
    const after = takeover.at - first.at
    expect(after).toBeGreaterThan(lockTtl - 100) // nobody fetched while the lock was held
    expect(after).toBeLessThan(lockTtl + 750) // and a waiter noticed the expiry promptly (≤ 250 ms polls)

    // The survivors share the takeover's token; nothing more is fetched.
    const survivors = workers.filter((w) => w !== holder)
    const again = await Promise.all(survivors.map((w) => w.burst(20)))
    expect(again.every((r) => r.statuses.every((s) => s === 200))).toBe(true)
    expect(requests).toHaveLength(2)
  })
})

// The failover scenarios, the same for every client of every topology (Redis Cluster,
// Sentinel): 8 replica processes share one token; the primary that holds it is killed
// (kill -9) between renewals and again with a renewal inside the outage, then failed over
// gracefully; every caller request must still answer 200, and the token requests and the
// recovery are measured.
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import type { ClientKind, RedisTarget } from '../../redis/fixtures/clients.js'
import { startLimit, startWorkers, stopWorkers, type Worker } from '../../redis/helpers/workers.js'
import {
  burstAll,
  emptyOutcome,
  type FleetServers,
  type Outcome,
  record,
  report,
  revocationRound,
  steadyLoad,
} from './fleet.js'

/** What a scenario needs of a topology. */
export interface FailoverTopology {
  /** 'Redis Cluster' or 'Sentinel', for the figures. */
  readonly name: string
  readonly target: RedisTarget
  /** The port of the primary that holds `prefix`'s token and lock now. */
  primaryFor(prefix: string): Promise<number>
  /** Waits until a replica has replaced `former` as that primary; the new one's port. */
  waitForPromotion(prefix: string, former: number, timeoutMs: number): Promise<number>
  /** `kill -9` of a server. */
  kill(port: number): Promise<void>
  /** Starts a killed server again and waits until it is a replica in sync. */
  revive(port: number): Promise<void>
  /** Asks for a graceful failover of `prefix`'s primary to its replica (it is only asked). */
  failOverGracefully(prefix: string): Promise<void>
  /** 'CLUSTER FAILOVER', 'SENTINEL FAILOVER'. */
  readonly gracefulName: string
}

const replicas = 8
const cold = 100
/** Requests per worker in each revocation round. */
const perRound = 10
/** Most ms a failover may take here, with the topologies' 1 s failure detection. */
const promotionLimit = 20_000
/** Most ms from a kill until the fleet shares one token again. */
const recoveryLimit = 25_000
/** "No request waits more than a few seconds": a generous bound, not a measurement. */
const slowestLimit = 8_000

export function describeFailover(
  kind: ClientKind,
  topology: () => FailoverTopology,
  servers: () => FleetServers,
): void {
  describe(kind, () => {
    let workers: Worker[] = []
    const extra: Worker[] = []
    /** The steady load of the running test, stopped after it whatever happens. */
    let load: ReturnType<typeof steadyLoad> | undefined
    /** A server the running test killed, started again after it whatever happens. */
    let killed: number | undefined
    const prefix = `failover-${kind}-${randomBytes(4).toString('hex')}:`
    const encryptionKey = randomBytes(32).toString('base64')

    const config = () => {
      const { api, endpoint } = servers()
      return {
        kind,
        redis: topology().target,
        api: api.origin,
        tokenUrl: `${endpoint.origin}/token`,
        prefix,
        encryptionKey,
        // Revocation rounds follow each other closely: allow every forced renewal.
        cache: { minRenewalInterval: 0 },
      }
    }
    beforeAll(async () => {
      workers = await startWorkers(replicas, config())
    }, startLimit + 10_000)

    afterEach(async () => {
      await load?.stop()
      load = undefined
      if (killed !== undefined) await topology().revive(killed)
      killed = undefined
    }, 60_000)

    afterAll(async () => {
      await stopWorkers([...workers, ...extra])
    })

    /** A process started now: does it find the fleet's token (no token request)? */
    async function newProcessFindsToken(): Promise<boolean> {
      const { endpoint } = servers()
      const [fresh] = await startWorkers(1, config())
      if (fresh === undefined) throw new Error('no worker')
      extra.push(fresh)
      const before = endpoint.requests.length
      const result = await fresh.burst(perRound)
      expect(result.statuses).toEqual(Array(perRound).fill(200))
      return endpoint.requests.length === before
    }

    /**
     * Revocation rounds, one every 250 ms, until one costs a single token request (the
     * fleet shares again); at most `recoveryLimit` after `since`. Every round costs at
     * most one token request per process. These probes revoke every token ever issued: a
     * process whose 401 retry picks up a stored token the same mass revocation killed passes
     * that 401 on (one retry per request), so their failures are reported, not asserted.
     */
    async function untilShared(since: number, outcome: Outcome): Promise<number> {
      const { api, endpoint } = servers()
      const costs: number[] = []
      for (;;) {
        const round = await revocationRound(workers, api, endpoint, perRound)
        record(outcome, round.results)
        costs.push(round.tokenRequests)
        expect(round.tokenRequests).toBeLessThanOrEqual(replicas)
        if (round.tokenRequests === 1) return performance.now() - since
        if (performance.now() - since > recoveryLimit) {
          throw new Error(
            `the fleet did not share one token again within ${recoveryLimit} ms (token requests per round: ${costs.join(', ')}; failed requests: ${outcome.failed})`,
          )
        }
        await sleep(250)
      }
    }

    function expectAllOk(outcome: Outcome, slowest = slowestLimit): void {
      expect(outcome.errors).toEqual([])
      expect(outcome.failed).toBe(0)
      expect(outcome.slowest).toBeLessThan(slowest)
    }

    /** The probe rounds' failures, for the figures (see untilShared). */
    const probeText = (probes: Outcome): string =>
      `; probe rounds: ${probes.failed} of ${probes.requests} failed`

    test(`cold: ${replicas} processes × ${cold} requests → 1 token request, all 200`, async () => {
      const { endpoint } = servers()
      const before = endpoint.requests.length
      const outcome = emptyOutcome()
      record(outcome, await burstAll(workers, cold))
      const tokenRequests = endpoint.requests.length - before
      report({
        topology: topology().name,
        client: kind,
        scenario: `cold start, ${replicas} processes × ${cold} requests`,
        tokenRequests,
        requests: outcome.requests,
        failed: outcome.failed,
        slowest: outcome.slowest,
      })
      // Cold start is CPU-bound (8 processes on the test machine): no latency bound here.
      expectAllOk(outcome, Number.POSITIVE_INFINITY)
      expect(tokenRequests).toBe(1)
    })

    test('kill -9 of the primary between renewals, under steady load → ≤ 2 extra token requests, all 200; a new process finds the token', async () => {
      const { endpoint } = servers()
      const primary = await topology().primaryFor(prefix)
      const before = endpoint.requests.length
      load = steadyLoad(workers)
      await sleep(300)
      const killedAt = performance.now()
      killed = primary
      await topology().kill(primary)
      await topology().waitForPromotion(prefix, primary, promotionLimit)
      const promoted = performance.now() - killedAt
      // Steady load a moment longer on the new primary.
      await sleep(500)
      const outcome = await load.stop()
      load = undefined
      const extraRequests = endpoint.requests.length - before
      const found = await newProcessFindsToken()
      const probes = emptyOutcome()
      const shared = await untilShared(killedAt, probes)
      report({
        topology: topology().name,
        client: kind,
        scenario: 'kill -9 of the primary between renewals, steady load',
        tokenRequests: extraRequests,
        requests: outcome.requests,
        failed: outcome.failed,
        recovery: `promoted ${(promoted / 1000).toFixed(1)} s; shared ${(shared / 1000).toFixed(1)} s; new process found the token: ${found ? 'yes' : 'no'}${probeText(probes)}`,
        slowest: outcome.slowest,
      })
      expectAllOk(outcome)
      expect(extraRequests).toBeLessThanOrEqual(2)
      expect(found).toBe(true)
    })

    test('kill -9 of the primary with a renewal inside the outage → ≤ 1 token request per process, all 200; then shared again', async () => {
      const { api, endpoint } = servers()
      const primary = await topology().primaryFor(prefix)
      load = steadyLoad(workers)
      await sleep(300)
      const killedAt = performance.now()
      killed = primary
      await topology().kill(primary)
      // The token is revoked while its primary is down: every process must renew.
      const inside = await revocationRound(workers, api, endpoint, perRound)
      const outcome = await load.stop()
      load = undefined
      record(outcome, inside.results)
      const probes = emptyOutcome()
      const shared = await untilShared(killedAt, probes)
      const found = await newProcessFindsToken()
      report({
        topology: topology().name,
        client: kind,
        scenario: 'kill -9 of the primary, the token revoked during the outage',
        tokenRequests: inside.tokenRequests,
        requests: outcome.requests,
        failed: outcome.failed,
        recovery: `shared ${(shared / 1000).toFixed(1)} s; new process found the token: ${found ? 'yes' : 'no'}${probeText(probes)}`,
        slowest: outcome.slowest,
      })
      expectAllOk(outcome)
      expect(inside.tokenRequests).toBeGreaterThanOrEqual(1)
      expect(inside.tokenRequests).toBeLessThanOrEqual(replicas)
      expect(found).toBe(true)
    })

    test('graceful failover with a renewal at the switch → ≤ 1 + 2 token requests, all 200; then shared again', async () => {
      const { api, endpoint } = servers()
      const primary = await topology().primaryFor(prefix)
      load = steadyLoad(workers)
      await sleep(300)
      const startedAt = performance.now()
      await topology().failOverGracefully(prefix)
      const atSwitch = await revocationRound(workers, api, endpoint, perRound)
      await topology().waitForPromotion(prefix, primary, promotionLimit)
      const outcome = await load.stop()
      load = undefined
      record(outcome, atSwitch.results)
      const probes = emptyOutcome()
      const shared = await untilShared(startedAt, probes)
      report({
        topology: topology().name,
        client: kind,
        scenario: `${topology().gracefulName}, the token revoked at the switch`,
        tokenRequests: atSwitch.tokenRequests,
        requests: outcome.requests,
        failed: outcome.failed,
        recovery: `shared ${(shared / 1000).toFixed(1)} s${probeText(probes)}`,
        slowest: outcome.slowest,
      })
      expectAllOk(outcome)
      expect(atSwitch.tokenRequests).toBeLessThanOrEqual(3)
    })
  })
}

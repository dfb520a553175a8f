// A fleet of replicas (tests/redis/helpers/workers.ts) under load while Redis fails over:
// steady load, revocation rounds, and the figures docs/replicas.md reports.
import { setTimeout as sleep } from 'node:timers/promises'
import type { BurstResult, Worker } from '../../redis/helpers/workers.js'
import {
  type ApiServer,
  startApi,
  startTokenEndpoint,
  type TokenEndpoint,
} from '../../support/servers.js'

/** The protected API and the token endpoint the fleet uses. */
export interface FleetServers {
  api: ApiServer
  endpoint: TokenEndpoint
  close(): Promise<void>
}

/** Starts the API and a token endpoint that takes 100 ms to answer, as real ones take a moment. */
export async function startFleetServers(): Promise<FleetServers> {
  const [api, endpoint] = await Promise.all([startApi(), startTokenEndpoint()])
  const issue = endpoint.respond
  endpoint.respond = (n) => ({ ...issue(n), delay: 100 })
  return {
    api,
    endpoint,
    close: async () => {
      await Promise.all([api.close(), endpoint.close()])
    },
  }
}

/** What the caller requests of a scenario saw. */
export interface Outcome {
  requests: number
  /** Requests that did not end in a 200 (an error, or another status). */
  failed: number
  /** A few of the failures' messages, for the assertion's output. */
  errors: string[]
  /** Ms the slowest request took. */
  slowest: number
}

export function emptyOutcome(): Outcome {
  return { requests: 0, failed: 0, errors: [], slowest: 0 }
}

export function record(outcome: Outcome, results: readonly BurstResult[]): void {
  for (const result of results) {
    outcome.requests += result.statuses.length
    outcome.failed += result.statuses.filter((status) => status !== 200).length
    outcome.slowest = Math.max(outcome.slowest, result.slowest)
    if (outcome.errors.length < 5) outcome.errors.push(...result.errors.slice(0, 5))
  }
}

/** Every token issued so far is revoked: the API answers 401 to it (`token-<n>`). */
export function revokeAll(api: ApiServer, endpoint: TokenEndpoint): void {
  const n = endpoint.issued.length
  api.accept = (authorization) => {
    const match = /^Bearer token-(\d+)$/.exec(authorization ?? '')
    return match !== null && Number(match[1]) > n
  }
}

/** Every live worker sends `count` concurrent requests. */
export async function burstAll(workers: readonly Worker[], count: number): Promise<BurstResult[]> {
  return Promise.all(workers.filter((w) => w.alive()).map((w) => w.burst(count)))
}

/**
 * Requests from every worker, a burst of `count` each every `pause` ms, until `stop()`
 * or `limitMs` (a bound, so a hung scenario cannot load forever).
 */
export function steadyLoad(
  workers: readonly Worker[],
  options: { count?: number; pause?: number; limitMs?: number } = {},
): { stop(): Promise<Outcome> } {
  const { count = 10, pause = 50, limitMs = 60_000 } = options
  const outcome = emptyOutcome()
  let stopped = false
  const deadline = Date.now() + limitMs
  const running = (async () => {
    while (!stopped && Date.now() < deadline) {
      try {
        record(outcome, await burstAll(workers, count))
      } catch (error) {
        // A worker that exits mid-burst (the test is being torn down) is a failure, not a crash.
        outcome.failed++
        if (outcome.errors.length < 5) outcome.errors.push(String(error))
      }
      await sleep(pause)
    }
  })()
  return {
    async stop() {
      stopped = true
      await running
      return outcome
    },
  }
}

/** Token requests made while `during` runs. */
export async function tokenRequestsDuring<T>(
  endpoint: TokenEndpoint,
  during: () => Promise<T>,
): Promise<{ tokenRequests: number; value: T }> {
  const before = endpoint.requests.length
  const value = await during()
  return { tokenRequests: endpoint.requests.length - before, value }
}

/** One revocation round: revoke, every worker bursts; its token requests and outcome. */
export async function revocationRound(
  workers: readonly Worker[],
  api: ApiServer,
  endpoint: TokenEndpoint,
  count: number,
): Promise<{ tokenRequests: number; results: BurstResult[] }> {
  revokeAll(api, endpoint)
  const { tokenRequests, value } = await tokenRequestsDuring(endpoint, () =>
    burstAll(workers, count),
  )
  return { tokenRequests, results: value }
}

/** One measured failover, as docs/replicas.md's table shows it. */
export interface Figure {
  topology: string
  client: string
  scenario: string
  tokenRequests: number
  requests: number
  failed: number
  /** Ms until the fleet shares one token again / a new process finds the token; per scenario. */
  recovery?: string
  slowest: number
}

const figures: Figure[] = []

export function report(figure: Figure): void {
  figures.push(figure)
}

/** The figures of this file, one line each, as docs/replicas.md quotes them. */
export function printFigures(): void {
  if (figures.length === 0) return
  const lines = figures.map(
    (f) =>
      `| ${f.topology} | ${f.client} | ${f.scenario} | ${f.tokenRequests} | ${f.failed} of ${f.requests} | ${f.recovery ?? '—'} | ${Math.round(f.slowest)} ms |`,
  )
  console.log(
    [
      '| topology | client | scenario | token requests | failed requests | recovery | slowest request |',
      ...lines,
    ].join('\n'),
  )
}

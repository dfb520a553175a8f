// @ts-check
// Rollover: latency under steady open-loop load while short-lived tokens expire. Each request
// is scheduled at a fixed rate and its latency counts from its scheduled time, so a client
// that stalls pays for every request it held up (no coordinated omission). Each row runs in a
// fresh client process (bench/client-process.js).
import { forkProcess, percentile, progress } from './util.js'

/** The rows, in order: the first is the no-rollover baseline. */
export const rolloverRuns = [
  {
    name: 'undici-access-token',
    label: 'undici-access-token, 1 h token (no rollover)',
    long: true,
  },
  { name: 'undici-access-token', label: 'undici-access-token (refresh-ahead)', long: false },
  {
    name: 'undici-access-token, refreshAhead: false',
    label: 'undici-access-token, refreshAhead: false (blocking refresh)',
    long: false,
  },
  { name: 'hand-written p-memoize + fetch', label: 'hand-written p-memoize + fetch', long: false },
  { name: '@badgateway/oauth2-client', label: '@badgateway/oauth2-client', long: false },
  { name: 'google-auth-library', label: 'google-auth-library', long: false },
  { name: 'axios + axios-auth-refresh', label: 'axios + axios-auth-refresh', long: false },
  {
    name: 'axios + axios-auth-refresh, deduplicateRefresh: false',
    label: 'axios + axios-auth-refresh, deduplicateRefresh: false',
    long: false,
  },
]

/**
 * @typedef {object} RolloverRow
 * @property {string} label
 * @property {string} name
 * @property {boolean} long
 * @property {number} requests
 * @property {number} p50
 * @property {number} p99
 * @property {number} max
 * @property {number} failed        callers that did not get a 200
 * @property {number} unauthorizedHits  API hits answered 401 (no or expired token)
 * @property {number} tokenRequests
 * @property {number[]} tokenTimes  ms since the load started, per token request
 * @property {number[]} at      ms since the load started, per request (scheduled time)
 * @property {number[]} latency ms, per request
 */

/**
 * @param {import('./util.js').Servers} servers
 * @param {{ lifetime: number, tokenDelay: number, rate: number, seconds: number, deadline: number }} options
 * @returns {Promise<{ rows: RolloverRow[], skipped: string[] }>}
 */
export async function rollover(servers, { lifetime, tokenDelay, rate, seconds, deadline }) {
  /** @type {RolloverRow[]} */
  const rows = []
  /** @type {string[]} */
  const skipped = []
  for (const run of rolloverRuns) {
    if (performance.now() + (seconds + 2) * 1000 > deadline) {
      skipped.push(run.label)
      continue
    }
    const lifetimeS = run.long ? 3600 : lifetime
    const client = await forkProcess('./client-process.js')
    const started = performance.now()
    const ticker = setInterval(
      () =>
        progress(
          `rollover: ${run.label}, ${((performance.now() - started) / 1000).toFixed(0)}/${seconds} s`,
        ),
      250,
    )
    try {
      await servers.configure({ lifetime: lifetimeS, tokenDelay })
      const load =
        /** @type {{ startEpoch: number, at: number[], latency: number[], status: number[] }} */ (
          await client.call('rollover', {
            name: run.name,
            origins: { idp: servers.idp, api: servers.api },
            lifetimeMs: lifetimeS * 1000,
            rate,
            seconds,
          })
        )
      const stats = await servers.stats()
      const sorted = load.latency.toSorted((a, b) => a - b)
      // The warm-up's token request came before the load started.
      const tokenTimes = stats.tokenTimes
        .filter((t) => t >= load.startEpoch)
        .map((t) => t - load.startEpoch)
      rows.push({
        label: run.label,
        name: run.name,
        long: run.long,
        requests: load.latency.length,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        max: sorted.at(-1) ?? Number.NaN,
        failed: load.status.filter((code) => code !== 200).length,
        unauthorizedHits: stats.unauthenticated + stats.expired,
        tokenRequests: tokenTimes.length,
        tokenTimes,
        at: load.at,
        latency: load.latency,
      })
    } finally {
      clearInterval(ticker)
      await client.close()
    }
  }
  return { rows, skipped }
}

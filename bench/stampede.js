// @ts-check
// Stampede: N requests started in the same tick on a cold client; how many token requests
// reach the token endpoint, how many API hits carry no valid token, how many callers fail.
// Each row runs in a fresh client process (bench/client-process.js).
import { forkProcess, progress } from './util.js'

export const stampedeKinds = [
  'undici-access-token',
  'naive: token per request',
  'hand-written p-memoize + fetch',
  '@badgateway/oauth2-client',
  'google-auth-library',
  'axios + axios-auth-refresh',
  'axios + axios-auth-refresh, deduplicateRefresh: false',
]

/**
 * @typedef {object} StampedeRow
 * @property {string} name
 * @property {number} concurrency
 * @property {number} tokenRequests
 * @property {number} unauthorizedHits  API hits without a valid token (answered 401)
 * @property {number} succeeded
 * @property {number} failed
 * @property {number} ms
 */

/**
 * @param {import('./util.js').Servers} servers
 * @param {{ sizes: number[], tokenDelay: number, deadline: number }} options
 * @returns {Promise<{ rows: StampedeRow[], skipped: string[] }>}
 */
export async function stampede(servers, { sizes, tokenDelay, deadline }) {
  /** @type {StampedeRow[]} */
  const rows = []
  /** @type {string[]} */
  const skipped = []
  for (const concurrency of sizes) {
    for (const name of stampedeKinds) {
      if (performance.now() > deadline) {
        skipped.push(`${name} × ${concurrency}`)
        continue
      }
      progress(`stampede: ${name}, ${concurrency} concurrent cold requests`, true)
      const client = await forkProcess('./client-process.js')
      try {
        await servers.configure({ lifetime: 3600, tokenDelay })
        const { succeeded, ms } = await client.call('stampede', {
          name,
          origins: { idp: servers.idp, api: servers.api },
          concurrency,
        })
        const stats = await servers.stats()
        rows.push({
          name,
          concurrency,
          tokenRequests: stats.tokenRequests,
          unauthorizedHits: stats.unauthenticated + stats.expired,
          succeeded,
          failed: concurrency - succeeded,
          ms,
        })
      } finally {
        await client.close()
      }
    }
  }
  return { rows, skipped }
}

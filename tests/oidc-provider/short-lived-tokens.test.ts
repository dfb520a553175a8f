// 3-second JWT access tokens from oidc-provider rolling over under steady load:
// no expired token may reach the API, no caller may fail. The API checks `exp`
// with jose and clock tolerance 0 (provider.ts).
//
// oidc-provider sets `exp` = floor(now in s) + ttl and `expires_in` = ttl, so the
// JWT's exp can be up to a second earlier than expires_in says: the cache has to
// go by the earlier of the two.
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { beforeEach, expect, test } from 'vitest'
import { accessToken, clientCredentials } from '../../lib/index.js'
import { startOidcEnvironment } from './provider.js'
import { useEnvironment } from './use-environment.js'

/** How long the load runs; the tokens live 3 s, so several roll over. */
const runFor = 8_000
/** Ms between two requests. */
const interval = 25
/** Bound on the number of requests whatever the clock does. */
const maxRequests = 400

const env = useEnvironment(() => startOidcEnvironment({ shortTokenTtl: 3 }), {
  per: 'test',
  cleanUp: () => agent.close(),
})
let agent: Agent

beforeEach(() => {
  agent = new Agent({ keepAliveTimeout: 10_000 })
})

test('3 s tokens under steady load: no expired token reaches the API, every caller gets 200', async () => {
  const api = agent.compose(
    accessToken({
      origins: env.api.origin,
      fetchToken: clientCredentials({
        tokenUrl: env.tokenUrl,
        clientId: env.basicClient.clientId,
        clientSecret: env.basicClient.clientSecret,
        resource: env.resources.ticks,
        scope: 'read',
      }),
    }),
  )

  // Start late in a wall-clock second: the first token's floored iat, and so its exp,
  // is then 0.7–1 s earlier than its expires_in says — the worst case, every run.
  const phase = Date.now() % 1000
  if (phase < 700) await sleep(750 - phase)

  const results: Promise<number | string>[] = []
  const end = Date.now() + runFor
  for (let i = 0; i < maxRequests && Date.now() < end; i++) {
    results.push(
      request(`${env.api.origin}/ticks/${i}`, { dispatcher: api }).then(
        async (response) => {
          await response.body.dump()
          return response.statusCode
        },
        (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : 'error'),
      ),
    )
    await sleep(interval)
  }
  const outcomes = await Promise.all(results)

  expect(env.serverErrors, 'oidc-provider server errors').toEqual([])
  // Every caller got 200.
  expect(outcomes.filter((outcome) => outcome !== 200)).toEqual([])
  // No token arrived after its exp; in fact no request was refused at all (a 401
  // retried with a fresh token would hide an expired token from the caller).
  expect(env.api.expiredArrivals, 'expired JWTs that reached the API').toBe(0)
  expect(env.api.hits.filter((hit) => hit.outcome !== 'ok').map((hit) => hit.outcome)).toEqual([])
  expect(env.api.hits).toHaveLength(outcomes.length)
  for (const hit of env.api.hits) expect(hit.kind).toBe('jwt')

  // The tokens did roll over: the load spanned at least 8 s and no token was used past
  // its exp (≤ 3 s after issue), so at least three tokens were used.
  const used = new Set(env.api.hits.map((hit) => hit.token))
  expect(used.size).toBeGreaterThanOrEqual(3)
  // One token request per token, no storm: every success but perhaps a last
  // background refresh was used, and nothing failed.
  expect(env.grants.every((grant) => grant.status === 200)).toBe(true)
  expect(env.tokenRequests).toBe(env.grants.length)
  expect(env.tokenRequests).toBeLessThanOrEqual(used.size + 1)
  expect(env.tokenRequests).toBeLessThanOrEqual(10)
})

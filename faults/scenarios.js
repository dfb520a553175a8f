// @ts-check
// The fault suite: each scenario runs real loopback servers (a token endpoint and
// a protected API) against the built package and returns one row of counts.
// `npm run faults` prints them as a table; tests/faults.test.ts asserts the bounds.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { Agent, request } from 'undici'
import { accessToken, clientCredentials, TokenRequestError } from 'undici-access-token'
import { sleep } from '../tests/support/async.js'
import { unsignedJwt } from '../tests/support/jwt.js'
import { secretsIn } from '../tests/support/secrets.js'
import { startApi, startTokenEndpoint } from '../tests/support/servers.js'

const clientId = 'fault-suite'
const clientSecret = 'fault-suite-client-secret'
const channelNames = [
  'fetch:start',
  'fetch:success',
  'fetch:error',
  'cache:hit',
  'cache:miss',
  'cache:refresh-ahead',
  'retry',
  'invalidate',
  'backoff',
].map((name) => `undici-access-token:${name}`)

/**
 * @typedef {object} Row
 * @property {string} scenario
 * @property {number} requests
 * @property {number} succeeded
 * @property {number} failedClearly  requests that failed with a TokenRequestError or an abort
 * @property {number} failedOther    any other failure (should be 0)
 * @property {number} tokenRequests
 * @property {number} unauthenticatedHits  API hits without a valid token
 * @property {number} waitedAfterFirst     cache misses (someone waited for the token endpoint) after the first success
 * @property {number} secretsSeen          secrets or tokens found in errors and events
 * @property {string} notes
 */

/**
 * @typedef {'ok' | 'down' | 'slow' | 'html' | 'truncated' | 'no-token' | 'expires-0' | 'expires-negative' | 'expires-abc' | 'expires-huge' | '429'} TokenMode
 */

/**
 * A token endpoint and an API on loopback, and an interceptor wired to them.
 * @param {{ lifetime?: number, tokenDelay?: number, interceptor?: Record<string, unknown> }} [options]
 */
export async function harness(options = {}) {
  const state = {
    /** @type {TokenMode} */
    mode: 'ok',
    tokenDelay: options.tokenDelay ?? 0,
    lifetime: options.lifetime ?? 3600,
    /** @type {Set<string>} */
    valid: new Set(),
    rejectAll: false,
    /** API hits still to be answered 401 whatever their token (a transient rejection) */
    rejectNext: 0,
    /** Hand out the same token on every request until it expires (metadata servers, vaults). */
    repeatToken: false,
    /**
     * Issue JWTs whose `exp` is a whole second before what `expires_in` says, as a
     * server that floors `iat` to the second does at worst (oidc-provider).
     */
    jwtFloored: false,
    /** @type {Map<string, number>} token → its JWT exp in epoch ms */
    expiry: new Map(),
    apiHits: 0,
    unauthenticatedHits: 0,
    /** API hits whose token's JWT exp had passed */
    expiredHits: 0,
  }
  const started = Date.now()
  // The token endpoint: every token it hands out is in `idp.issued`.
  const idp = await startTokenEndpoint({
    async respond(n) {
      if (state.mode === 'down') return { destroy: true }
      if (state.tokenDelay > 0) await sleep(state.tokenDelay)
      const token = `fault-token-${n}-${Math.random().toString(36).slice(2)}`
      switch (state.mode) {
        case 'html':
          return {
            status: 502,
            headers: { 'content-type': 'text/html' },
            body: '<html><body><h1>502 Bad Gateway</h1></body></html>',
          }
        case 'truncated':
          return { body: `{"access_token":"${token}","expires_in":36` }
        case 'no-token':
          return { body: { token_type: 'Bearer', expires_in: 3600 } }
        case 'expires-0':
          return { body: { access_token: token, expires_in: 0 } }
        case 'expires-negative':
          return { body: { access_token: token, expires_in: -5 } }
        case 'expires-abc':
          return { body: { access_token: token, expires_in: 'abc' } }
        case 'expires-huge':
          return { body: { access_token: token, expires_in: 1e12 } }
        case '429':
          return { status: 429, headers: { 'retry-after': '2' }, body: { error: 'slow_down' } }
        default: {
          const repeated = state.repeatToken ? idp.issued.at(-1) : undefined
          if (repeated !== undefined) {
            return {
              body: { access_token: repeated, token_type: 'Bearer', expires_in: state.lifetime },
            }
          }
          if (state.jwtFloored) {
            const exp = Math.floor(Date.now() / 1000) + state.lifetime - 1
            const jwt = unsignedJwt(
              { exp, iat: exp - state.lifetime, jti: token },
              { header: { alg: 'none', typ: 'at+jwt' }, signature: '' },
            )
            state.valid.add(jwt)
            state.expiry.set(jwt, exp * 1000)
            return { body: { access_token: jwt, token_type: 'Bearer', expires_in: state.lifetime } }
          }
          state.valid.add(token)
          return { body: { access_token: token, token_type: 'Bearer', expires_in: state.lifetime } }
        }
      }
    },
  })
  const api = await startApi({
    record: false,
    accept(authorization) {
      state.apiHits++
      const token = (authorization ?? '').replace(/^Bearer /, '')
      const expired = Date.now() >= (state.expiry.get(token) ?? Number.POSITIVE_INFINITY)
      if (expired) state.expiredHits++
      const valid = state.valid.has(token) && !expired
      if (!valid) state.unauthenticatedHits++
      const rejected = state.rejectAll || state.rejectNext > 0
      if (state.rejectNext > 0) state.rejectNext--
      return valid && !rejected
    },
  })
  const agent = new Agent({ connections: 64 })
  const dispatcher = agent.compose(
    accessToken({
      origins: api.origin,
      fetchToken: clientCredentials({ tokenUrl: `${idp.origin}/token`, clientId, clientSecret }),
      ...options.interceptor,
    }),
  )

  // Everything observable: errors callers saw and every diagnostics event.
  /** @type {unknown[]} */
  const seen = []
  let misses = 0
  /** @type {Map<string, (message: unknown) => void>} */
  const listeners = new Map()
  for (const name of channelNames) {
    const listener = (/** @type {unknown} */ message) => {
      seen.push(message)
      if (name.endsWith('cache:miss')) misses++
    }
    listeners.set(name, listener)
    subscribe(name, listener)
  }

  const counts = { requests: 0, succeeded: 0, failedClearly: 0, failedOther: 0 }
  /** Cache misses when the first request succeeded: every miss after it made someone wait. */
  let missesAtFirstSuccess = -1
  /** Sends one GET; records the outcome. @param {AbortSignal} [signal] */
  async function send(signal) {
    counts.requests++
    try {
      const response = await request(`${api.origin}/readers`, { dispatcher, signal })
      await response.body.dump()
      if (response.statusCode === 200 && missesAtFirstSuccess < 0) missesAtFirstSuccess = misses
      if (response.statusCode === 200) counts.succeeded++
      else counts.failedClearly++ // a 401 the caller sees: clear, not silent
      return response.statusCode
    } catch (error) {
      seen.push(error)
      const clear =
        error instanceof TokenRequestError ||
        (error instanceof Error && error.name === 'AbortError')
      if (clear) counts.failedClearly++
      else counts.failedOther++
      return error
    }
  }

  function secretsSeen() {
    const secrets = [
      clientSecret,
      Buffer.from(`${clientId}:${clientSecret}`).toString('base64'),
      ...new Set(idp.issued),
    ]
    let found = 0
    for (const item of seen) found += secretsIn(item, secrets).length
    return found
  }

  /** The row for this scenario. @param {string} scenario @param {string} notes @returns {Row} */
  function row(scenario, notes) {
    return {
      scenario,
      ...counts,
      tokenRequests: idp.requests.length,
      waitedAfterFirst: missesAtFirstSuccess < 0 ? 0 : misses - missesAtFirstSuccess,
      unauthenticatedHits: state.unauthenticatedHits,
      secretsSeen: secretsSeen(),
      notes,
    }
  }

  async function close() {
    for (const [name, listener] of listeners) unsubscribe(name, listener)
    await agent.close()
    await Promise.all([idp.close(), api.close()])
  }

  /**
   * Sends `batch` requests at once, again and again for `ms`, pausing `pause` ms in between.
   * @param {number} ms @param {number} batch @param {number} pause
   */
  async function load(ms, batch, pause) {
    const until = Date.now() + ms
    while (Date.now() < until) {
      await Promise.all(Array.from({ length: batch }, () => send()))
      await sleep(pause)
    }
  }

  return {
    state,
    send,
    load,
    row,
    close,
    started,
    /** How many token requests have arrived. */
    get tokenRequests() {
      return idp.requests.length
    },
    /** When each token request arrived, in ms since the harness started. */
    get tokenRequestTimes() {
      return idp.requests.map((request) => request.receivedAt - started)
    },
  }
}

/**
 * @typedef {object} Scenario
 * @property {string} name
 * @property {() => Promise<Row & { checks: Record<string, boolean> }>} run
 */

/** @type {Scenario[]} */
export const scenarios = [
  {
    name: 'token endpoint down, then back',
    async run() {
      const h = await harness()
      h.state.mode = 'down'
      const outageEnds = Date.now() + 2_500
      let outageRequests = 0
      let failedFast = 0
      let slowest = 0
      while (Date.now() < outageEnds) {
        const before = Date.now()
        const outcome = await h.send()
        outageRequests++
        slowest = Math.max(slowest, Date.now() - before)
        if (outcome instanceof TokenRequestError && Date.now() - before < 250) failedFast++
        await sleep(50)
      }
      const duringOutage = h.tokenRequests
      h.state.mode = 'ok'
      let recovered = false
      for (let i = 0; i < 100 && !recovered; i++) {
        recovered = (await h.send()) === 200
        await sleep(50)
      }
      for (let i = 0; i < 20; i++) await h.send()
      await h.close()
      const r = h.row(
        'token endpoint down 2.5 s, then back',
        `${outageRequests} requests in the outage, each failed in ≤ ${slowest} ms; ${duringOutage} token requests then (backoff 1 s, 2 s, … ±20 %); recovered: ${recovered}`,
      )
      return {
        ...r,
        checks: {
          'failed clearly and fast': failedFast === outageRequests && r.failedOther === 0,
          'token requests within the backoff schedule (≤ 3 in 2.5 s)': duringOutage <= 3,
          recovered,
          'nothing sent without a token': r.unauthenticatedHits === 0,
        },
      }
    },
  },
  {
    name: 'token endpoint slow (2 s) while 1 000 requests arrive',
    async run() {
      const h = await harness({ tokenDelay: 2_000 })
      const aborters = Array.from({ length: 100 }, () => new AbortController())
      const pending = Array.from({ length: 1_000 }, (_, i) =>
        h.send(i < 100 ? aborters[i]?.signal : undefined),
      )
      await sleep(200)
      const abortedAt = Date.now()
      for (const controller of aborters) controller.abort()
      const abortedOutcomes = await Promise.all(pending.slice(0, 100))
      const abortsTook = Date.now() - abortedAt
      await Promise.all(pending)
      await h.close()
      const r = h.row(
        'token endpoint slow (2 s), 1 000 requests, 100 aborted',
        `the 100 aborts ended in ${abortsTook} ms`,
      )
      return {
        ...r,
        checks: {
          'one token request': r.tokenRequests === 1,
          'aborted callers ended before the token arrived':
            abortsTook < 1_000 && abortedOutcomes.every((o) => o instanceof Error),
          'the other 900 succeeded': r.succeeded === 900,
          'nothing sent without a token': r.unauthenticatedHits === 0,
        },
      }
    },
  },
  {
    name: 'token endpoint answers 429 with Retry-After: 2',
    async run() {
      const h = await harness()
      h.state.mode = '429'
      await h.load(2_600, 1, 50)
      const times = h.tokenRequestTimes
      await h.close()
      const gap = times.length > 1 ? (times[1] ?? 0) - (times[0] ?? 0) : Number.POSITIVE_INFINITY
      const r = h.row(
        'token endpoint 429, Retry-After: 2',
        `second token request ${times.length > 1 ? `${gap} ms after the first` : 'not made'}`,
      )
      return {
        ...r,
        checks: {
          'no token request before 2 s': gap >= 1_990,
          'failed clearly': r.failedOther === 0 && r.succeeded === 0,
          'nothing sent without a token': r.unauthenticatedHits === 0,
        },
      }
    },
  },
  .../** @type {const} */ ([
    ['html', 'an HTML error page'],
    ['truncated', 'truncated JSON'],
    ['no-token', 'a 200 without access_token'],
    ['expires-0', 'expires_in 0'],
    ['expires-negative', 'expires_in -5'],
    ['expires-abc', 'expires_in "abc"'],
    ['expires-huge', 'expires_in 1e12'],
  ]).map(([mode, label]) => ({
    name: `token endpoint returns ${label}`,
    async run() {
      const h = await harness({ interceptor: { backoff: false } })
      h.state.mode = mode
      /** @type {unknown[]} */
      const outcomes = []
      for (let i = 0; i < 5; i++) outcomes.push(await h.send())
      await h.close()
      const first = outcomes[0]
      const r = h.row(
        `token endpoint: ${label}`,
        first instanceof Error ? first.message.slice(0, 90) : String(first),
      )
      return {
        ...r,
        checks: {
          'clear errors': outcomes.every((o) => o instanceof TokenRequestError),
          'nothing cached (a token request per request)': r.tokenRequests === 5,
          'nothing sent': r.unauthenticatedHits === 0 && h.state.apiHits === 0,
        },
      }
    },
  })),
  {
    name: 'token expires under steady load (lifetime 2 s, endpoint latency 300 ms)',
    async run() {
      const h = await harness({ lifetime: 2, tokenDelay: 300 })
      await h.load(5_000, 10, 20)
      await h.close()
      const r = h.row(
        'token expiry under steady load (2 s tokens, 300 ms endpoint)',
        'refresh-ahead rolled the token over in the background',
      )
      return {
        ...r,
        checks: {
          'no request waited for the token endpoint after the first': r.waitedAfterFirst === 0,
          'it did roll over': r.tokenRequests >= 3,
          'every request succeeded': r.succeeded === r.requests,
        },
      }
    },
  },
  {
    name: 'API revokes the token mid-load',
    async run() {
      const h = await harness()
      const rounds = 20
      for (let round = 0; round < rounds; round++) {
        if (round === 10) h.state.valid.clear() // revoked: only tokens issued from now on are valid
        await Promise.all(Array.from({ length: 50 }, () => h.send()))
      }
      await h.close()
      const r = h.row(
        'API revokes the token mid-load (1 000 requests)',
        'the 50 requests that met the revoked token were renewed and retried',
      )
      return {
        ...r,
        checks: {
          'one renewal': r.tokenRequests === 2,
          'every request succeeded': r.succeeded === r.requests,
          'only the revoked token was rejected (≤ 50 hits)': r.unauthenticatedHits <= 50,
        },
      }
    },
  },
  {
    name: 'token source repeats its token; one transient 401',
    async run() {
      const h = await harness()
      h.state.repeatToken = true
      for (let round = 0; round < 20; round++) {
        if (round === 10) h.state.rejectNext = 1
        await Promise.all(Array.from({ length: 50 }, () => h.send()))
      }
      await h.close()
      const r = h.row(
        'token source repeats its token, one transient 401 (1 000 requests)',
        'the repeated token was cached again after one renewal; the retried request got 200',
      )
      return {
        ...r,
        checks: {
          'one renewal in all (2 token requests)': r.tokenRequests === 2,
          'the 401 ended in a 200': r.succeeded === r.requests,
        },
      }
    },
  },
  {
    name: 'token source repeats its token; API answers 401 to everything for 5 s',
    async run() {
      const h = await harness()
      h.state.repeatToken = true
      h.state.rejectAll = true
      await h.load(5_000, 10, 10)
      await h.close()
      const r = h.row(
        'token source repeats its token; API answers 401 to everything for 5 s',
        `${h.tokenRequests} token requests for ${h.state.apiHits} API hits`,
      )
      return {
        ...r,
        checks: {
          'token requests bounded by the rate limit (1 + one per 5 s)': r.tokenRequests <= 3,
          'every caller got its 401': r.failedClearly === r.requests && r.failedOther === 0,
        },
      }
    },
  },
  {
    name: '3 s JWTs whose exp is 1 s before expires_in, under steady load',
    async run() {
      const h = await harness({ lifetime: 3 })
      h.state.jwtFloored = true
      await h.load(7_000, 5, 20)
      await h.close()
      const r = h.row(
        '3 s JWTs, exp 1 s before expires_in (7 s of steady load)',
        `${h.state.expiredHits} API hits with an expired token; the earlier of exp and expires_in was used`,
      )
      return {
        ...r,
        checks: {
          'no expired token reached the API': h.state.expiredHits === 0,
          'it did roll over': r.tokenRequests >= 3,
          'every request succeeded': r.succeeded === r.requests,
        },
      }
    },
  },
  {
    name: 'API answers 401 to everything for 5 s',
    async run() {
      const h = await harness()
      h.state.rejectAll = true
      await h.load(5_000, 10, 10)
      await h.close()
      const r = h.row(
        'API answers 401 to everything for 5 s',
        'each caller gets the 401 after at most one retry',
      )
      return {
        ...r,
        checks: {
          'token requests bounded by the rate limit (1 + one per 5 s)': r.tokenRequests <= 3,
          'every caller got its 401': r.failedClearly === r.requests && r.failedOther === 0,
        },
      }
    },
  },
]

/** Runs every scenario in turn. @param {(row: Row & { checks: Record<string, boolean> }) => void} [onRow] */
export async function runAll(onRow) {
  const rows = []
  for (const scenario of scenarios) {
    const row = await scenario.run()
    rows.push(row)
    onRow?.(row)
  }
  return rows
}

// @ts-check
/**
 * The readers aggregator demo: `npm start`.
 *
 * The classic server-side pattern — a TokenService that caches an OAuth 2 access
 * token until it expires and an HTTP client that adds `Authorization: Bearer …`
 * — done with undici-access-token. Everything runs on 127.0.0.1 with ephemeral
 * ports; nothing to configure. Four servers take part:
 *
 *   token endpoint  client credentials grant (client_secret_basic), opaque
 *                   `tok_…` tokens living 2 s, can revoke a token
 *   readers API     GET /readers, needs a valid bearer token, else 401
 *                   `WWW-Authenticate: Bearer error="invalid_token"`
 *   status service  another origin the aggregator calls; not in `origins`,
 *                   so it must never see the token
 *   aggregator      calls both through one undici Agent composed with accessToken()
 *
 * Part A uses a TokenCache directly; part B sends requests through the
 * aggregator while the token expires and is revoked. Every number printed is
 * counted by the servers, not assumed.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { accessToken, clientCredentials, TokenCache } from 'undici-access-token'

const tokenLifetimeSeconds = 2
const tokenEndpointLatencyMs = 25
const clientId = 'readers-aggregator'
const clientSecret = 'demo-secret-not-for-production'
const concurrentGets = 100
const totalRequests = 500
const batchSize = 50
const batchIntervalMs = 500 // with 2 s tokens: batches 4 and 9 find the token expired

/** @typedef {import('node:http').IncomingMessage} IncomingMessage */
/** @typedef {import('node:http').ServerResponse} ServerResponse */
/** @typedef {import('node:http').Server} Server */
/**
 * @typedef {object} IssuedToken
 * @property {string} value
 * @property {number} issuedAt   epoch ms
 * @property {number} expiresAt  epoch ms
 * @property {boolean} revoked
 * @property {number} served     readers API requests it was accepted on
 * @property {number} rejected   readers API requests it got a 401 on
 */
/** @typedef {'missing' | 'unknown' | 'expired' | 'revoked'} RejectReason */

/**
 * Starts a node:http server on 127.0.0.1 with an ephemeral port.
 * @param {(req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>} handle
 * @returns {Promise<{ origin: string, close: () => Promise<void> }>}
 */
async function listen(handle) {
  /** @type {Server} */
  const server = createServer((req, res) => {
    /** @type {Buffer[]} */
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => {
      Promise.resolve(handle(req, res, Buffer.concat(chunks).toString('utf8'))).catch(
        (/** @type {unknown} */ error) => {
          res.writeHead(500, { 'content-type': 'text/plain' })
          res.end(String(error))
        },
      )
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = /** @type {import('node:net').AddressInfo} */ (server.address())
  return {
    origin: `http://127.0.0.1:${address.port}`,
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/**
 * @param {ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string>} [headers]
 */
function sendJson(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}

/** 1. The token endpoint: RFC 6749 §4.4 client credentials, client_secret_basic. */
async function startTokenEndpoint() {
  /** @type {Map<string, IssuedToken>} */
  const tokens = new Map()
  /** @type {IssuedToken[]} */
  const issued = []
  const expected = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`
  const stats = { tokenRequests: 0, badClient: 0 }

  const server = await listen(async (req, res, body) => {
    if (req.method !== 'POST' || req.url !== '/oauth2/token') {
      return sendJson(res, 404, { error: 'not_found' })
    }
    stats.tokenRequests++
    await sleep(tokenEndpointLatencyMs)
    if (req.headers.authorization !== expected) {
      stats.badClient++
      return sendJson(res, 401, { error: 'invalid_client' }, { 'www-authenticate': 'Basic' })
    }
    const form = new URLSearchParams(body)
    if (form.get('grant_type') !== 'client_credentials') {
      return sendJson(res, 400, { error: 'unsupported_grant_type' })
    }
    const now = Date.now()
    /** @type {IssuedToken} */
    const token = {
      value: `tok_${randomBytes(12).toString('base64url')}`,
      issuedAt: now,
      expiresAt: now + tokenLifetimeSeconds * 1000,
      revoked: false,
      served: 0,
      rejected: 0,
    }
    tokens.set(token.value, token)
    issued.push(token)
    sendJson(
      res,
      200,
      {
        access_token: token.value,
        token_type: 'bearer',
        expires_in: tokenLifetimeSeconds,
        scope: form.get('scope') ?? '',
      },
      { 'cache-control': 'no-store' },
    )
  })

  return {
    ...server,
    tokenUrl: `${server.origin}/oauth2/token`,
    stats,
    issued,
    /**
     * What the resource server learns about a presented token (introspection, in-process).
     * @param {string | undefined} value
     * @returns {{ ok: true, token: IssuedToken } | { ok: false, reason: RejectReason, token?: IssuedToken }}
     */
    check(value) {
      if (value === undefined) return { ok: false, reason: 'missing' }
      const token = tokens.get(value)
      if (token === undefined) return { ok: false, reason: 'unknown' }
      if (token.revoked) return { ok: false, reason: 'revoked', token }
      if (Date.now() >= token.expiresAt) return { ok: false, reason: 'expired', token }
      return { ok: true, token }
    },
    /** @param {IssuedToken} token */
    revoke(token) {
      token.revoked = true
    },
  }
}

const readers = [
  { id: 1, name: 'Ada Lovelace', reading: 'Sketch of the Analytical Engine' },
  { id: 2, name: 'Grace Hopper', reading: 'A Manual of Operation for the Mark I' },
  { id: 3, name: 'Edsger Dijkstra', reading: 'Go To Statement Considered Harmful' },
]

/**
 * 2. The readers API: a resource server that wants a valid bearer token.
 * @param {Awaited<ReturnType<typeof startTokenEndpoint>>} auth
 */
async function startReadersApi(auth) {
  const stats = {
    requests: 0,
    /** @type {Record<RejectReason, number>} */
    rejected: { missing: 0, unknown: 0, expired: 0, revoked: 0 },
  }
  const server = await listen((req, res) => {
    stats.requests++
    const header = req.headers.authorization
    const match = header === undefined ? null : /^Bearer (\S+)$/.exec(header)
    const verdict = auth.check(match?.[1])
    if (!verdict.ok) {
      stats.rejected[verdict.reason]++
      if (verdict.token) verdict.token.rejected++
      const challenge =
        verdict.reason === 'missing'
          ? 'Bearer realm="readers"'
          : `Bearer realm="readers", error="invalid_token", error_description="token ${verdict.reason}"`
      return sendJson(res, 401, { error: 'unauthorized' }, { 'www-authenticate': challenge })
    }
    verdict.token.served++
    if (req.method !== 'GET' || req.url !== '/readers') return sendJson(res, 404, {})
    sendJson(res, 200, readers)
  })
  return { ...server, stats }
}

/** The other origin the aggregator calls: it must never be sent the token. */
async function startStatusService() {
  const stats = { requests: 0, withAuthorization: 0 }
  const server = await listen((req, res) => {
    stats.requests++
    if (req.headers.authorization !== undefined) stats.withAuthorization++
    sendJson(res, 200, { status: 'ok', at: new Date().toISOString() })
  })
  return { ...server, stats }
}

/**
 * 3. The aggregator: one Agent composed with accessToken(), used for both upstreams.
 * @param {{ tokenUrl: string, readersOrigin: string, statusOrigin: string }} upstreams
 */
async function startAggregator({ tokenUrl, readersOrigin, statusOrigin }) {
  const api = new Agent().compose(
    accessToken({
      origins: readersOrigin, // the only origin that ever sees the token
      fetchToken: clientCredentials({ tokenUrl, clientId, clientSecret, scope: 'readers:read' }),
    }),
  )
  const server = await listen(async (req, res) => {
    if (req.url !== '/summary') return sendJson(res, 404, { error: 'not_found' })
    const [readersResponse, statusResponse] = await Promise.all([
      request(`${readersOrigin}/readers`, { dispatcher: api }),
      request(`${statusOrigin}/status`, { dispatcher: api }),
    ])
    const [list, status] = await Promise.all([
      readersResponse.body.json(),
      statusResponse.body.json(),
    ])
    if (readersResponse.statusCode !== 200) {
      return sendJson(res, 502, {
        error: 'readers API answered',
        status: readersResponse.statusCode,
      })
    }
    sendJson(res, 200, { readers: list, upstream: status })
  })
  return {
    ...server,
    async close() {
      await server.close()
      await api.close()
    },
  }
}

/**
 * 4. Part A: the token cache on its own, the seed's `FetchToken()`.
 * @param {Awaited<ReturnType<typeof startTokenEndpoint>>} auth
 */
async function partA(auth) {
  const tokens = new TokenCache({
    fetchToken: clientCredentials({
      tokenUrl: auth.tokenUrl,
      clientId,
      clientSecret,
      scope: 'readers:read',
    }),
  })
  const before = auth.stats.tokenRequests
  const got = await Promise.all(Array.from({ length: concurrentGets }, () => tokens.get()))
  const burst = auth.stats.tokenRequests - before
  const distinct = new Set(got.map((token) => token.accessToken)).size
  const first = /** @type {import('undici-access-token').Token} */ (got[0])

  const waitMs = Math.max(0, first.expiresAt - Date.now()) + 100
  await sleep(waitMs)
  const beforeRefetch = auth.stats.tokenRequests
  const again = await tokens.get()
  const refetch = auth.stats.tokenRequests - beforeRefetch
  const cachedBefore = auth.stats.tokenRequests
  await tokens.get()
  const cachedAfter = auth.stats.tokenRequests - cachedBefore
  return {
    burst,
    distinct,
    waited: waitMs,
    refetch,
    renewed: again.accessToken !== first.accessToken,
    cachedAfter,
  }
}

/**
 * 5. Part B: requests through the aggregator; the token expires and is revoked meanwhile.
 * @param {Awaited<ReturnType<typeof startTokenEndpoint>>} auth
 * @param {string} aggregatorOrigin
 */
async function partB(auth, aggregatorOrigin) {
  const client = new Agent()
  const tokenRequestsBefore = auth.stats.tokenRequests
  const firstIssued = auth.issued.length
  let served = 0
  let succeeded = 0
  /** @type {Map<string, number>} */
  const failures = new Map()
  /** @type {IssuedToken | undefined} */
  let revoked
  const started = Date.now()

  const one = async () => {
    try {
      const response = await request(`${aggregatorOrigin}/summary`, { dispatcher: client })
      const body = /** @type {{ readers?: unknown[] }} */ (await response.body.json())
      served++
      if (response.statusCode === 200 && body.readers?.length === readers.length) succeeded++
      else
        failures.set(
          `HTTP ${response.statusCode}`,
          (failures.get(`HTTP ${response.statusCode}`) ?? 0) + 1,
        )
    } catch (error) {
      const name = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
      failures.set(name, (failures.get(name) ?? 0) + 1)
    }
  }

  const batches = Math.ceil(totalRequests / batchSize)
  for (let batch = 0; batch < batches; batch++) {
    const due = started + batch * batchIntervalMs
    if (Date.now() < due) await sleep(due - Date.now())
    const size = Math.min(batchSize, totalRequests - batch * batchSize)
    await Promise.all(Array.from({ length: size }, one))
    if (batch + 1 === Math.floor(batches / 2)) {
      // Halfway: the authorization server revokes the token the aggregator is using.
      revoked = auth.issued.at(-1)
      if (revoked) auth.revoke(revoked)
    }
  }
  await client.close()
  return {
    served,
    succeeded,
    failures,
    tokenRequests: auth.stats.tokenRequests - tokenRequestsBefore,
    tokens: auth.issued.slice(firstIssued),
    revoked,
    started,
    elapsed: Date.now() - started,
  }
}

/** @param {string} token */
const short = (token) => `${token.slice(0, 8)}…`

async function main() {
  const auth = await startTokenEndpoint()
  const readersApi = await startReadersApi(auth)
  const statusService = await startStatusService()
  const aggregator = await startAggregator({
    tokenUrl: auth.tokenUrl,
    readersOrigin: readersApi.origin,
    statusOrigin: statusService.origin,
  })
  /** @type {string[]} */
  const problems = []
  try {
    console.log(
      `undici-access-token demo — four servers on 127.0.0.1, tokens living ${tokenLifetimeSeconds} s\n`,
    )

    const a = await partA(auth)
    console.log('Part A — a TokenCache used directly (the seed’s FetchToken())')
    console.log(
      `  ${concurrentGets} concurrent tokens.get() calls → ${a.burst} token request (${a.distinct} distinct token)`,
    )
    console.log(
      `  ${(a.waited / 1000).toFixed(1)} s later, past expiry: tokens.get() → ${a.refetch} token request (${a.renewed ? 'a new token' : 'the same token'}), the next get() → ${a.cachedAfter} (cached)\n`,
    )
    if (a.burst !== 1) problems.push(`part A: ${a.burst} token requests for one burst`)
    if (a.distinct !== 1) problems.push(`part A: ${a.distinct} distinct tokens for one burst`)
    if (a.refetch !== 1 || !a.renewed) problems.push('part A: no single refetch after expiry')
    if (a.cachedAfter !== 0) problems.push('part A: the renewed token was not cached')

    const apiRequestsBefore = readersApi.stats.requests
    const rejectedBefore = { ...readersApi.stats.rejected }
    const b = await partB(auth, aggregator.origin)
    const rejected = {
      missing: readersApi.stats.rejected.missing - rejectedBefore.missing,
      unknown: readersApi.stats.rejected.unknown - rejectedBefore.unknown,
      expired: readersApi.stats.rejected.expired - rejectedBefore.expired,
      revoked: readersApi.stats.rejected.revoked - rejectedBefore.revoked,
    }
    const invalid = rejected.missing + rejected.unknown + rejected.expired + rejected.revoked
    const apiRequests = readersApi.stats.requests - apiRequestsBefore

    console.log(
      `Part B — ${totalRequests} requests through the aggregator, ${batchSize} at a time over ${(b.elapsed / 1000).toFixed(1)} s; the token is revoked halfway`,
    )
    const rows = [
      ['requests served', `${b.served} (${b.succeeded} succeeded)`],
      ['token requests', `${b.tokenRequests}`],
      ['readers API requests', `${apiRequests}`],
      ['401s swallowed and retried', `${invalid}`],
      [
        'API requests without a valid token',
        `${invalid} (revoked ${rejected.revoked}, expired ${rejected.expired}, unknown ${rejected.unknown}, none sent ${rejected.missing})`,
      ],
      [
        'Authorization sent to status service',
        `${statusService.stats.withAuthorization} of ${statusService.stats.requests} requests`,
      ],
    ]
    const width = Math.max(...rows.map(([label]) => (label ?? '').length))
    for (const [label, value] of rows) console.log(`  ${(label ?? '').padEnd(width)}  ${value}`)

    console.log('\n  token         issued at  API requests  401s  fate')
    for (const [index, token] of b.tokens.entries()) {
      const fate = token.revoked
        ? 'revoked → renewed after 401'
        : index < b.tokens.length - 1
          ? 'expired → renewed'
          : 'in use at the end'
      console.log(
        `  ${short(token.value).padEnd(12)}  ${`+${((token.issuedAt - b.started) / 1000).toFixed(2)} s`.padStart(9)}  ${String(token.served).padStart(12)}  ${String(token.rejected).padStart(4)}  ${fate}`,
      )
    }
    for (const [failure, count] of b.failures) console.log(`  failed ×${count}: ${failure}`)

    if (b.served !== totalRequests || b.succeeded !== totalRequests) {
      problems.push(`part B: ${b.succeeded} of ${totalRequests} requests succeeded`)
    }
    if (apiRequests !== totalRequests + invalid) {
      problems.push(`part B: ${apiRequests} API requests for ${totalRequests} + ${invalid} retries`)
    }
    if (rejected.missing !== 0) problems.push('part B: requests reached the API without a token')
    if (statusService.stats.withAuthorization !== 0) {
      problems.push('part B: the token leaked to the status service')
    }
    if (b.revoked === undefined || b.revoked.rejected === 0) {
      problems.push('part B: the revocation was not exercised')
    }
    if (b.tokenRequests < 2 || b.tokenRequests > b.tokens.length) {
      problems.push(`part B: ${b.tokenRequests} token requests`)
    }
    if (auth.stats.badClient !== 0) problems.push('the token endpoint refused the client')
  } finally {
    await aggregator.close()
    await Promise.all([readersApi.close(), statusService.close(), auth.close()])
  }

  if (problems.length > 0) {
    console.log(`\nCHECKS FAILED:\n  ${problems.join('\n  ')}`)
    process.exitCode = 1
  } else {
    console.log('\nall checks passed')
  }
}

await main()

// @ts-check
/**
 * OpenTelemetry, live: `node examples/otel.js` (after `npm run build`).
 *
 * One line — `instrument({ meterProvider, tracerProvider })` — turns the package's diagnostics
 * channels into metrics and spans. This example sends demo-like traffic through
 * `accessToken()` for about 4 s, on 127.0.0.1 with ephemeral ports:
 *
 *   token endpoint  client credentials, tokens that live 2 s, 30 ms to answer; it revokes
 *                   every token at 1 s and answers its 3rd request 503
 *   API             200 for a token it issued and that is live, else 401 invalid_token
 *
 * Along the way the token is revoked (the 401s are swallowed and retried, one renewal for
 * all), expires (refresh-ahead fetches the next one in the background) and the token
 * endpoint fails one of those refreshes (a failed fetch and a backoff, while the current
 * token keeps serving). Every 500 ms it prints the metrics as the SDK collected them —
 * what an exporter would send — so the numbers move as the traffic does. It exits 0 when
 * every metric moved.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { context } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { DataPointType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { Agent, request } from 'undici'
import { accessToken, clientCredentials } from 'undici-access-token'
import { instrument } from 'undici-access-token/otel'

const tokenLifetimeSeconds = 2
const tokenLatencyMs = 30
const requestsPerTick = 10
const tickMs = 50 // 200 requests/s
const runMs = 4_000
const revokeAtMs = 1_000
/**
 * The token request the endpoint fails: the 1st is the cold miss, the 2nd the renewal after the
 * revocation (before the first token is 80 % through its life), the 3rd a refresh-ahead.
 */
const failingTokenRequest = 3
const printEveryMs = 500

// --- the servers -------------------------------------------------------------------------

/** @type {Map<string, { expiresAt: number, revoked: boolean }>} */
const issued = new Map()
let tokenRequests = 0

/**
 * A node:http server on 127.0.0.1 with an ephemeral port.
 * @param {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void} handle
 */
async function listen(handle) {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => handle(req, res))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address())
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(resolve))
    },
  }
}

const idp = await listen(async (_req, res) => {
  await sleep(tokenLatencyMs)
  if (++tokenRequests === failingTokenRequest) {
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0' })
    res.end('{"error":"temporarily_unavailable"}')
    return
  }
  const token = `tok_${randomBytes(12).toString('hex')}`
  issued.set(token, { expiresAt: Date.now() + tokenLifetimeSeconds * 1000, revoked: false })
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 2 }))
})

const api = await listen((req, res) => {
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
  const state = token === undefined ? undefined : issued.get(token)
  if (state === undefined || state.revoked || Date.now() >= state.expiresAt) {
    res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' })
    res.end()
    return
  }
  res.end('{"readers":42}')
})

// --- OpenTelemetry: an SDK in memory, and the one line ------------------------------------

/** Collects on demand: the table below reads what an exporter would be sent. */
class TableReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}
const reader = new TableReader()
const meterProvider = new MeterProvider({ readers: [reader] })
const spans = new InMemorySpanExporter()
const tracerProvider = new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(spans)],
})
// Spans are active across awaits only with a context manager (the SDK's NodeSDK sets one).
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())

const uninstrument = instrument({ meterProvider, tracerProvider })

// --- the client and its traffic ----------------------------------------------------------

const agent = new Agent()
const dispatcher = agent.compose(
  accessToken({
    origins: api.origin,
    fetchToken: clientCredentials({
      tokenUrl: `${idp.origin}/token`,
      clientId: 'otel-example',
      clientSecret: 'example-secret-not-for-production',
    }),
    backoff: { initialDelay: 100 }, // the next refresh comes well before the token expires
  }),
)
const tracer = tracerProvider.getTracer('examples/otel')
let sent = 0
let failed = 0

/** One request, inside a span of its own: a swallowed 401 becomes an event on it. */
function get() {
  sent++
  return tracer.startActiveSpan('GET /readers', async (span) => {
    try {
      const { statusCode, body } = await request(`${api.origin}/readers`, { dispatcher })
      await body.dump()
      if (statusCode !== 200) failed++
    } catch {
      failed++
    } finally {
      span.end()
    }
  })
}

/**
 * The metrics now, by name: a counter's sum, or a histogram's count, sum and max over
 * every attribute set; `where` keeps only points with those attributes.
 * @param {Record<string, string>} [where]
 */
async function collect(where = {}) {
  const { resourceMetrics } = await reader.collect()
  /** @type {Map<string, { count: number, sum: number, max: number }>} */
  const totals = new Map()
  for (const { metrics } of resourceMetrics.scopeMetrics) {
    for (const metric of metrics) {
      const total = totals.get(metric.descriptor.name) ?? { count: 0, sum: 0, max: 0 }
      for (const point of metric.dataPoints) {
        if (!Object.entries(where).every(([key, value]) => point.attributes[key] === value)) {
          continue
        }
        if (metric.dataPointType === DataPointType.HISTOGRAM) {
          const value = /** @type {{ count: number, sum: number, max?: number }} */ (point.value)
          total.count += value.count
          total.sum += value.sum
          total.max = Math.max(total.max, value.max ?? 0)
        } else {
          total.count += /** @type {number} */ (point.value)
        }
      }
      totals.set(metric.descriptor.name, total)
    }
  }
  return (/** @type {string} */ name) => totals.get(name) ?? { count: 0, sum: 0, max: 0 }
}

const columns = [
  ['time', 6],
  ['requests', 9],
  ['hits', 7],
  ['misses', 7],
  ['fetches', 8],
  ['errors', 7],
  ['retries', 8],
  ['backoffs', 9],
  ['fetch ms avg / max', 19],
]
const row = (/** @type {(string | number)[]} */ cells) =>
  cells.map((cell, i) => String(cell).padStart(/** @type {number} */ (columns[i]?.[1]))).join(' ')

async function printRow(/** @type {number} */ elapsedMs) {
  const metric = await collect()
  const errors = (await collect({ 'undici_access_token.outcome': 'error' }))(
    'undici_access_token.fetch.duration',
  ).count
  const duration = metric('undici_access_token.fetch.duration')
  const latency =
    duration.count === 0
      ? '–'
      : `${((duration.sum / duration.count) * 1000).toFixed(1)} / ${(duration.max * 1000).toFixed(1)}`
  console.log(
    row([
      `${(elapsedMs / 1000).toFixed(1)}s`,
      sent,
      metric('undici_access_token.cache.hits').count,
      metric('undici_access_token.cache.misses').count,
      metric('undici_access_token.token_requests').count,
      errors,
      metric('undici_access_token.retries').count,
      metric('undici_access_token.backoff.duration').count,
      latency,
    ]),
  )
  return metric
}

console.log(`token endpoint ${idp.origin}, API ${api.origin}; 2 s tokens, 200 requests/s`)
console.log(
  `every token revoked at ${revokeAtMs / 1000} s; token request ${failingTokenRequest} answered 503\n`,
)
console.log(row(columns.map(([name]) => /** @type {string} */ (name))))

const started = performance.now()
/** @type {Promise<unknown>[]} */
const inFlight = []
let nextPrint = printEveryMs
let revoked = false
for (let elapsed = 0; elapsed < runMs; elapsed = performance.now() - started) {
  if (!revoked && elapsed >= revokeAtMs) {
    revoked = true
    for (const state of issued.values()) state.revoked = true
  }
  for (let i = 0; i < requestsPerTick; i++) inFlight.push(get())
  if (elapsed >= nextPrint) {
    nextPrint += printEveryMs
    await printRow(elapsed)
  }
  await sleep(tickMs)
}
await Promise.all(inFlight)
const metric = await printRow(performance.now() - started)

// --- what the traces say, and whether every number moved ----------------------------------

const finished = spans.getFinishedSpans()
const fetchSpans = finished.filter((span) => span.name === 'undici_access_token.fetch')
/** @type {Record<string, number>} */
const byReason = {}
for (const span of fetchSpans) {
  const reason = String(span.attributes['undici_access_token.reason'])
  byReason[reason] = (byReason[reason] ?? 0) + 1
}
const retryEvents = finished.flatMap((span) =>
  span.events.filter((event) => event.name === 'undici_access_token.retry'),
).length
console.log(
  `\nspans: ${fetchSpans.length} undici_access_token.fetch (${Object.entries(byReason)
    .map(([reason, count]) => `${reason} ${count}`)
    .join(', ')}); ${retryEvents} undici_access_token.retry events on request spans`,
)
console.log(`requests that did not get a 200: ${failed} of ${sent}`)

const checks = {
  'cache hits counted': metric('undici_access_token.cache.hits').count > 0,
  'token requests counted': metric('undici_access_token.token_requests').count >= 2,
  'fetch durations recorded': metric('undici_access_token.fetch.duration').count >= 2,
  '401 retries counted': metric('undici_access_token.retries').count > 0,
  'a backoff recorded': metric('undici_access_token.backoff.duration').count > 0,
  'retry events on request spans': retryEvents > 0,
}
const missing = Object.entries(checks).filter(([, ok]) => !ok)
uninstrument()
await agent.close()
await Promise.all([idp.close(), api.close(), meterProvider.shutdown(), tracerProvider.shutdown()])
if (missing.length > 0) {
  console.log(`not seen: ${missing.map(([what]) => what).join(', ')}`)
  process.exitCode = 1
} else {
  console.log('every metric moved')
}

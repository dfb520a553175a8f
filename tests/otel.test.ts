import { trace } from '@opentelemetry/api'
import { Agent, request } from 'undici'
import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from 'vitest'
import { fingerprint } from '../lib/fingerprint.js'
import { accessToken, clientCredentials, TokenCache, type TokenStore } from '../lib/index.js'
import { instrument } from '../lib/otel/index.js'
import { attributeNames, metricNames, spanNames } from '../lib/otel/names.js'
import { enableContext, inMemoryTelemetry, type Telemetry } from './support/otel.js'
import { expectNoSecrets } from './support/secrets.js'
import {
  type ApiServer,
  startApi,
  startTokenEndpoint,
  type TokenEndpoint,
} from './support/servers.js'

const clientSecret = 'otel-client-secret'
let api: ApiServer
let idp: TokenEndpoint
let telemetry: Telemetry
let uninstrument: () => void
let disableContext: () => void
const closing: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  disableContext = enableContext()
  api = await startApi()
  idp = await startTokenEndpoint()
})
afterAll(async () => {
  disableContext()
  await Promise.all([api.close(), idp.close()])
})
beforeEach(() => {
  telemetry = inMemoryTelemetry()
  uninstrument = instrument({
    meterProvider: telemetry.meterProvider,
    tracerProvider: telemetry.tracerProvider,
  })
})
afterEach(async () => {
  uninstrument()
  await Promise.all(closing.splice(0).map((close) => close()))
  await telemetry.shutdown()
  api.reset()
  idp.reset()
})

/** A dispatcher with a token cache of its own, fetching from `idp` with client credentials. */
function client(options: { minRenewalInterval?: number } = {}) {
  const tokens = new TokenCache({
    fetchToken: clientCredentials({ tokenUrl: idp.tokenUrl, clientId: 'otel', clientSecret }),
    minRenewalInterval: options.minRenewalInterval ?? 0,
  })
  const dispatcher = new Agent().compose(accessToken({ origins: api.origin, tokens }))
  closing.push(() => dispatcher.close())
  const get = async (path = '/') => {
    const { statusCode, body } = await request(`${api.origin}${path}`, { dispatcher })
    await body.dump()
    return statusCode
  }
  return { tokens, get }
}

const { fetchDuration, tokenRequests, cacheHits, cacheMisses, retries, backoffDuration } =
  metricNames
const { reason, outcome, errorType } = attributeNames

test('each metric moves with the traffic: fetches, hits, misses, 401 retries, failures, backoff', async () => {
  const { tokens, get } = client()
  const total = (name: string, attributes?: Record<string, string | number>) =>
    telemetry.total(name, attributes)

  expect(await total(tokenRequests)).toBe(0)
  expect(await get('/1')).toBe(200) // cold: a miss, one fetch
  expect(await total(tokenRequests, { [reason]: 'miss' })).toBe(1)
  expect(await total(fetchDuration, { [reason]: 'miss', [outcome]: 'success' })).toBe(1)
  expect(await total(cacheMisses, { [reason]: 'empty' })).toBe(1)
  expect(await total(cacheHits)).toBe(0)

  for (let i = 0; i < 5; i++) expect(await get(`/hit/${i}`)).toBe(200)
  expect(await total(cacheHits)).toBe(5)
  expect(await total(tokenRequests)).toBe(1)

  // The API rejects token-1: one 401 swallowed, a renewal, the request sent again.
  api.accept = (authorization) => authorization === 'Bearer token-2'
  expect(await get('/revoked')).toBe(200)
  expect(await total(retries)).toBe(1)
  expect(await total(tokenRequests, { [reason]: 'renewal' })).toBe(1)
  expect(await total(fetchDuration, { [reason]: 'renewal', [outcome]: 'success' })).toBe(1)

  // The token endpoint fails: an error with its status, and a backoff.
  idp.respond = () => ({ status: 503, body: 'down' })
  await tokens.clear()
  await expect(get('/down')).rejects.toThrow()
  expect(await total(fetchDuration, { [outcome]: 'error', [errorType]: '503' })).toBe(1)
  expect(await total(backoffDuration, { [errorType]: '503' })).toBe(1)
  expect(await total(fetchDuration)).toBe(3)

  const points = await telemetry.points()
  const duration = points.find((point) => point.name === fetchDuration)
  expect(duration).toMatchObject({ unit: 's' })
  expect(duration?.sum).toBeLessThan(5) // seconds, not milliseconds
  expect(points.find((point) => point.name === backoffDuration)?.sum).toBeGreaterThan(0.5)
  // No key by default; no token or secret anywhere.
  expect(points.some((point) => attributeNames.key in point.attributes)).toBe(false)
  expectNoSecrets(
    {
      points,
      spans: telemetry
        .spans()
        .map(({ name, attributes, events }) => ({ name, attributes, events })),
    },
    [clientSecret, ...idp.issued],
  )
})

test('a store that fails or is too slow counts a store error per operation', async () => {
  const failing: TokenStore = {
    get: () => Promise.reject(new TypeError('store down')),
    set: () => new Promise(() => {}), // never answers
    delete: async () => false,
  }
  const tokens = new TokenCache({
    fetchToken: async () => ({ accessToken: 'store-test-token', expiresIn: 60 }),
    store: failing,
    storeTimeout: 20,
  })
  await tokens.get('tenant-a')
  await new Promise((resolve) => setTimeout(resolve, 60))
  const { storeErrors } = metricNames
  const { storeOperation } = attributeNames
  expect(
    await telemetry.total(storeErrors, { [storeOperation]: 'get', [errorType]: 'TypeError' }),
  ).toBe(1)
  expect(
    await telemetry.total(storeErrors, { [storeOperation]: 'set', [errorType]: 'timeout' }),
  ).toBe(1)
})

test('a span for each fetch, active while it runs; an error span says why', async () => {
  let activeInside: string | undefined
  const tokens = new TokenCache({
    fetchToken: async () => {
      activeInside = trace.getActiveSpan()?.spanContext().spanId
      return { accessToken: 'span-token', expiresIn: 60 }
    },
  })
  await tokens.get()
  const [span] = telemetry.spans()
  expect(span?.name).toBe(spanNames.fetch)
  expect(span?.attributes).toEqual({
    [reason]: 'miss',
    [attributeNames.fingerprint]: fingerprint('span-token'),
  })
  expect(activeInside).toBe(span?.spanContext().spanId)

  const failing = new TokenCache({
    fetchToken: () =>
      Promise.reject(Object.assign(new Error('no'), { status: 401, error: 'invalid_client' })),
  })
  await expect(failing.get()).rejects.toThrow()
  const errored = telemetry.spans()[1]
  expect(errored?.status).toMatchObject({ code: 2 })
  expect(errored?.attributes[errorType]).toBe('TokenRequestError')
  expect(errored?.events.map((event) => event.name)).toEqual(['exception'])
})

/** Runs `fn` with a new span `name` active, and ends it. */
function inSpan(name: string, fn: () => Promise<unknown>): Promise<void> {
  return telemetry.tracerProvider.getTracer('test').startActiveSpan(name, async (span) => {
    await fn()
    span.end()
  })
}

test('the fetch span is a child of the span that was active when the fetch began', async () => {
  const { get } = client()
  await inSpan('incoming', () => get('/child'))
  const incoming = telemetry.spans().find((span) => span.name === 'incoming')
  const fetch = telemetry.spans().find((span) => span.name === spanNames.fetch)
  expect(fetch?.parentSpanContext?.spanId).toBe(incoming?.spanContext().spanId)
  expect(fetch?.spanContext().traceId).toBe(incoming?.spanContext().traceId)
})

test("a swallowed 401 is an event on the caller's span, not on the span that opened the connection", async () => {
  const { get } = client()
  // The connection is opened under "opener": undici calls handlers back in its context.
  await inSpan('opener', () => get('/open'))
  api.accept = (authorization) => authorization === 'Bearer token-2'
  await inSpan('caller', async () => expect(await get('/revoked')).toBe(200))
  const byName = (name: string) => telemetry.spans().find((span) => span.name === name)
  expect(byName('opener')?.events).toEqual([])
  const [event] = byName('caller')?.events ?? []
  expect(event?.name).toBe(spanNames.retry)
  expect(event?.attributes).toEqual({
    [attributeNames.fingerprint]: fingerprint('token-1'),
    [attributeNames.serverAddress]: '127.0.0.1',
    [attributeNames.serverPort]: api.port,
  })
  // The renewal it led to belongs to the caller's trace too.
  const renewal = telemetry
    .spans()
    .find((span) => span.name === spanNames.fetch && span.attributes[reason] === 'renewal')
  expect(renewal?.parentSpanContext?.spanId).toBe(byName('caller')?.spanContext().spanId)
})

test('includeKey: true adds the key to metrics and spans', async () => {
  uninstrument()
  uninstrument = instrument({
    meterProvider: telemetry.meterProvider,
    tracerProvider: telemetry.tracerProvider,
    includeKey: true,
  })
  const tokens = new TokenCache({
    fetchToken: async ({ key }) => ({ accessToken: `key-token-${key}`, expiresIn: 60 }),
  })
  await tokens.get('acme')
  await tokens.get('acme')
  await tokens.get('globex')
  const { key } = attributeNames
  expect(await telemetry.total(tokenRequests, { [key]: 'acme' })).toBe(1)
  expect(await telemetry.total(tokenRequests, { [key]: 'globex' })).toBe(1)
  expect(await telemetry.total(cacheHits, { [key]: 'acme' })).toBe(1)
  expect(telemetry.spans().map((span) => span.attributes[key])).toEqual(['acme', 'globex'])
})

test('uninstrument() stops every metric and span', async () => {
  const { get } = client()
  await get('/before')
  uninstrument()
  await get('/after')
  api.accept = (authorization) => authorization === 'Bearer token-2'
  await get('/after-401')
  expect(await telemetry.total(cacheHits)).toBe(0)
  expect(await telemetry.total(tokenRequests)).toBe(1)
  expect(await telemetry.total(retries)).toBe(0)
  expect(telemetry.spans()).toHaveLength(1)
})

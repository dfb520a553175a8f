import { AsyncLocalStorage } from 'node:async_hooks'
import { tracingChannel } from 'node:diagnostics_channel'
import { afterEach, expect, test } from 'vitest'
import { channelNames, type FetchTraceMessage, grantOf, nameGrant } from '../lib/diagnostics.js'
import { fingerprint } from '../lib/fingerprint.js'
import {
  clientCredentials,
  jwtBearer,
  TokenCache,
  TokenRequestError,
  tokenExchange,
} from '../lib/index.js'

const fetchTracing = tracingChannel<unknown, FetchTraceMessage>('undici-access-token:fetch')
const phases = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const

/** Every phase published, with a copy of the message as it was then. */
function record() {
  const seen: { phase: string; message: FetchTraceMessage }[] = []
  const handlers = Object.fromEntries(
    phases.map((phase) => [
      phase,
      (message: FetchTraceMessage) => {
        seen.push({ phase, message: { ...message } })
      },
    ]),
  ) as Record<(typeof phases)[number], (message: FetchTraceMessage) => void>
  fetchTracing.subscribe(handlers)
  stop.push(() => fetchTracing.unsubscribe(handlers))
  return seen
}
const stop: (() => void)[] = []
afterEach(() => {
  for (const undo of stop.splice(0)) undo()
})

test('the five channels are named after undici-access-token:fetch and listed in channelNames', () => {
  expect(channelNames).toEqual(
    expect.arrayContaining(phases.map((phase) => `tracing:undici-access-token:fetch:${phase}`)),
  )
})

test('a fetch publishes start and end, then asyncStart and asyncEnd with its outcome — never the token', async () => {
  const seen = record()
  const tokens = new TokenCache({
    fetchToken: async () => ({ accessToken: 'traced-token', expiresIn: 60 }),
  })
  await tokens.get('tenant')
  expect(seen.map(({ phase }) => phase)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd'])
  expect(seen[0]?.message).toEqual({ key: 'tenant', reason: 'miss' }) // no grant: a custom source
  const done = seen[3]?.message
  expect(done).toMatchObject({
    key: 'tenant',
    reason: 'miss',
    fingerprint: fingerprint('traced-token'),
    lifetimeMs: 60_000,
  })
  expect(done?.durationMs).toBeGreaterThanOrEqual(0)
  expect(done).not.toHaveProperty('result')
  expect(JSON.stringify(seen)).not.toContain('traced-token')
})

test('a failed fetch publishes error with the TokenRequestError its callers get', async () => {
  const seen = record()
  const tokens = new TokenCache({
    fetchToken: () => Promise.reject(new Error('endpoint down')),
    backoff: false,
  })
  const rejection = await tokens.get().catch((error: unknown) => error)
  expect(seen.map(({ phase }) => phase)).toEqual([
    'start',
    'end',
    'error',
    'asyncStart',
    'asyncEnd',
  ])
  const failed = seen[2]?.message
  expect(failed?.error).toBe(rejection)
  expect(failed?.error).toBeInstanceOf(TokenRequestError)
  expect(failed?.durationMs).toBeGreaterThanOrEqual(0)
  expect(failed).not.toHaveProperty('fingerprint')
})

test('a token source named with its grant carries it', async () => {
  const seen = record()
  const fetchToken = nameGrant('client_credentials', async () => ({ accessToken: 'granted' }))
  await new TokenCache({ fetchToken }).get()
  expect(seen[0]?.message).toEqual({ key: 'default', reason: 'miss', grant: 'client_credentials' })
})

test("the package's grants are named with their grant_type", () => {
  const common = { tokenUrl: 'http://127.0.0.1:1/token', clientId: 'c', clientSecret: 's' }
  expect(grantOf(clientCredentials(common))).toBe('client_credentials')
  expect(grantOf(tokenExchange({ ...common, subjectToken: 't', subjectTokenType: 'urn:x' }))).toBe(
    'urn:ietf:params:oauth:grant-type:token-exchange',
  )
  expect(grantOf(jwtBearer({ ...common, assertion: 'a.b.c' }))).toBe(
    'urn:ietf:params:oauth:grant-type:jwt-bearer',
  )
})

test('the fetch runs inside start.runStores: a store bound to start is its async context', async () => {
  record()
  const store = new AsyncLocalStorage<string>()
  fetchTracing.start.bindStore(store, (message) => `span for ${message.key}`)
  stop.push(() => fetchTracing.start.unbindStore(store))
  let inside: string | undefined
  const tokens = new TokenCache({
    fetchToken: async () => {
      await new Promise((resolve) => setTimeout(resolve, 1))
      inside = store.getStore()
      return { accessToken: 'bound' }
    },
  })
  await tokens.get('acme')
  expect(inside).toBe('span for acme')
  expect(store.getStore()).toBeUndefined()
})

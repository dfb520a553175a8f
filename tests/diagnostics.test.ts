import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { channelNames as names } from '../lib/diagnostics.js'
import { fingerprint } from '../lib/fingerprint.js'
import { accessToken, clientCredentials, TokenCache } from '../lib/index.js'
import { sleep } from './support/async.js'
import { manualClock } from './support/clock.js'
import { expectNoSecrets } from './support/secrets.js'
import {
  type ApiServer,
  startApi,
  startTokenEndpoint,
  type TokenEndpoint,
} from './support/servers.js'

const events: { channel: string; message: Record<string, unknown> }[] = []
const listeners = new Map<string, (message: unknown, name: string | symbol) => void>()

let api: ApiServer
let idp: TokenEndpoint

beforeAll(async () => {
  for (const name of names) {
    const listener = (message: unknown) =>
      events.push({ channel: name, message: message as Record<string, unknown> })
    listeners.set(name, listener)
    subscribe(name, listener)
  }
  api = await startApi()
  idp = await startTokenEndpoint()
})

afterAll(async () => {
  for (const [name, listener] of listeners) unsubscribe(name, listener)
  await Promise.all([api.close(), idp.close()])
})

const of = (suffix: string) =>
  events
    .filter((event) => event.channel === `undici-access-token:${suffix}`)
    .map((event) => event.message)

test('every stage publishes an event with key, timings, status and a fingerprint — never a token or secret', async () => {
  const clientSecret = 'diagnostics-client-secret'
  const clock = manualClock(1_000_000)
  const tokens = new TokenCache({
    fetchToken: clientCredentials({
      tokenUrl: `${idp.origin}/token`,
      clientId: 'diag',
      clientSecret,
    }),
    now: clock.now,
    minRenewalInterval: 0,
  })
  const dispatcher = new Agent().compose(accessToken({ origins: api.origin, tokens }))

  // miss → fetch → hit
  await (await request(`${api.origin}/1`, { dispatcher })).body.dump()
  await (await request(`${api.origin}/2`, { dispatcher })).body.dump()
  // refresh-ahead (3600 s token: past 0.8 of it)
  clock.advance(2_900_000)
  await (await request(`${api.origin}/3`, { dispatcher })).body.dump()
  await sleep(50)
  // 401 → retry with a renewed token
  api.accept = (authorization) =>
    authorization === `Bearer ${idp.issued.at(-1)}` && idp.issued.length >= 3
  await (await request(`${api.origin}/4`, { dispatcher })).body.dump()
  // a failing endpoint → fetch:error + backoff
  idp.respond = () => ({ status: 500, body: 'oops' })
  await tokens.clear()
  await request(`${api.origin}/5`, { dispatcher }).catch(() => {})

  expect(of('cache:miss')[0]).toMatchObject({ key: 'default', reason: 'empty' })
  expect(of('fetch:start')[0]).toMatchObject({ key: 'default', reason: 'miss' })
  const success = of('fetch:success')[0]
  expect(success).toMatchObject({
    key: 'default',
    fingerprint: fingerprint('token-1'),
    lifetimeMs: 3_600_000,
  })
  expect(typeof success?.durationMs).toBe('number')
  expect(of('cache:hit')[0]).toMatchObject({ key: 'default', fingerprint: fingerprint('token-1') })
  expect(of('cache:refresh-ahead')[0]).toMatchObject({
    key: 'default',
    fingerprint: fingerprint('token-1'),
  })
  expect(of('fetch:start').map((message) => message.reason)).toEqual(
    expect.arrayContaining(['miss', 'refresh-ahead', 'renewal']),
  )
  expect(of('retry')[0]).toMatchObject({
    key: 'default',
    origin: api.origin,
    fingerprint: fingerprint('token-2'),
  })
  expect(of('invalidate')[0]).toMatchObject({
    key: 'default',
    fingerprint: fingerprint('token-2'),
    evicted: true,
  })
  expect(of('fetch:error')[0]).toMatchObject({
    key: 'default',
    error: { name: 'TokenRequestError', status: 500 },
  })
  expect(of('backoff')[0]).toMatchObject({ key: 'default', failures: 1, error: { status: 500 } })

  expectNoSecrets(events, [
    clientSecret,
    ...idp.issued,
    Buffer.from(`diag:${clientSecret}`).toString('base64'),
  ])
  await dispatcher.close()
})

test('store:error: a store call that fails or times out, with its operation, key and a summary', async () => {
  events.length = 0
  const tokens = new TokenCache({
    fetchToken: async () => ({ accessToken: 'store-error-token', expiresIn: 60 }),
    store: {
      get: () => Promise.reject(new TypeError('store unreachable')),
      set: () => new Promise(() => {}), // never answers: slower than storeTimeout
      delete: async () => false,
      clear: () => Promise.reject(new Error('cannot clear')),
    },
    storeTimeout: 20,
  })
  await tokens.get('tenant-a') // a failed get is a miss, never a failed request
  await sleep(60)
  await tokens.clear()
  expect(of('store:error')).toEqual([
    {
      operation: 'get',
      key: 'tenant-a',
      timedOut: false,
      error: { name: 'TypeError', message: 'store unreachable' },
    },
    {
      operation: 'set',
      key: 'tenant-a',
      timedOut: true,
      error: { name: 'Error', message: 'Store set took over 20 ms' },
    },
    { operation: 'clear', timedOut: false, error: { name: 'Error', message: 'cannot clear' } },
  ])
})

import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Agent, interceptors, request } from 'undici'
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest'
import { accessToken, clientCredentials } from '../lib/index.js'
import { recordingHandler } from './support/handlers.js'
import {
  type ApiServer,
  startApi,
  startTokenEndpoint,
  type TokenEndpoint,
} from './support/servers.js'
import { tokenSource } from './support/token-sources.js'

// Regressions found by the compatibility matrix (npm run test:compat).

let idp: TokenEndpoint
let flaky: ApiServer
let revoked: Set<string>
let api: ApiServer
let other: ApiServer

beforeAll(async () => {
  idp = await startTokenEndpoint()
  api = await startApi()
  other = await startApi({ accept: () => true })
  const failedOnce = new Set<string>()
  // A valid token gets 503 the first time a path is asked for, then 200.
  flaky = await startApi({
    accept: (authorization) =>
      /^Bearer token-\d+$/.test(authorization ?? '') && !revoked.has(authorization ?? ''),
    respond: (hit, accepted) => {
      if (!accepted) {
        return {
          status: 401,
          headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
          body: 'no',
        }
      }
      if (!failedOnce.has(hit.url)) {
        failedOnce.add(hit.url)
        return { status: 503, body: 'no' }
      }
      return { body: 'ok' }
    },
  })
})

afterAll(async () => {
  await Promise.all([idp.close(), flaky.close(), api.close(), other.close()])
})

beforeEach(() => {
  flaky.reset()
  revoked = new Set()
})

const flakyHits = () =>
  flaky.hits.map(({ url, status, authorization }) => ({ url, status, authorization }))

test('compose(accessToken, retry()): a 5xx that retry() retries completes with the same token (it hung: a throw from onResponseEnd was dropped)', async () => {
  const dispatcher = new Agent().compose(
    accessToken({
      origins: flaky.origin,
      fetchToken: clientCredentials({
        tokenUrl: `${idp.origin}/token`,
        clientId: 'c',
        clientSecret: 's',
      }),
    }),
    interceptors.retry({ maxRetries: 2, minTimeout: 10, maxTimeout: 50 }),
  )
  const cold = await request(`${flaky.origin}/cold`, { dispatcher })
  expect([cold.statusCode, await cold.body.text()]).toEqual([200, 'ok'])
  const token = flakyHits()[0]?.authorization
  const warm = await request(`${flaky.origin}/warm`, { dispatcher })
  expect([warm.statusCode, await warm.body.text()]).toEqual([200, 'ok'])
  expect(flakyHits().map((hit) => [hit.url, hit.status, hit.authorization])).toEqual([
    ['/cold', 503, token],
    ['/cold', 200, token],
    ['/warm', 503, token],
    ['/warm', 200, token],
  ])

  // 401 → renewed token → 503 → retried by retry(): the retry carries the renewed token.
  revoked.add(token as string)
  const renewed = await request(`${flaky.origin}/renewed`, { dispatcher })
  expect(renewed.statusCode).toBe(200)
  await renewed.body.dump()
  const hits = flakyHits().filter((hit) => hit.url === '/renewed')
  const fresh = hits[1]?.authorization
  expect(fresh).not.toBe(token)
  expect(hits.map((hit) => [hit.status, hit.authorization])).toEqual([
    [401, token],
    [503, fresh],
    [200, fresh],
  ])
  await dispatcher.close()
})

test("getGlobalDispatcher().compose(accessToken(…)) on Node's own global dispatcher (bundled undici 6 on Node 20/22): built-in fetch carries the token (it failed: invalid onError method)", async () => {
  const fixture = fileURLToPath(new URL('./fixtures/global-dispatcher-builtin.js', import.meta.url))
  api.reset()
  other.reset()
  idp.reset()
  // The first token is rejected: the POST is answered after a renewal, its body resent.
  const firstToken = 'token-1'
  api.accept = (authorization) =>
    /^Bearer token-\d+$/.test(authorization ?? '') && authorization !== `Bearer ${firstToken}`
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [fixture, api.origin, `${idp.origin}/token`, other.origin],
    { timeout: 15_000 },
  )
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')
  if (Number(process.versions.undici?.split('.')[0]) < 7) {
    expect(result.base).toBe(`bundled undici ${process.versions.undici}`)
  }
  expect(result.statuses).toEqual([200, 200, 200, 200, 200])
  expect([result.post, result.postBody, result.elsewhere]).toEqual([200, 'hello', 200])
  expect(idp.requests).toHaveLength(2)
  expect(api.hits.filter((hit) => hit.method === 'POST').map((hit) => hit.body)).toEqual([
    'hello',
    'hello',
  ])
  expect(other.hits.every((hit) => hit.authorization === undefined)).toBe(true)
})

test('a dispatcher that only speaks the legacy handler API (undici 6) gets legacy callbacks mapped onto the new API, pause and resume included', async () => {
  const calls: string[] = []
  let resumed = 0
  let sent = 0
  // Answers 401 to the first attempt, 200 "hi" to the second, through the legacy callbacks only.
  const legacyOnly = (opts: { headers?: unknown }, handler: Record<string, unknown>): boolean => {
    if (typeof handler.onError !== 'function' || typeof handler.onConnect !== 'function') {
      throw new Error('invalid onError method')
    }
    const h = handler as {
      onConnect(abort: () => void): void
      onHeaders(status: number, raw: Buffer[], resume: () => void, text: string): boolean
      onData(chunk: Buffer): boolean
      onComplete(trailers: Buffer[]): void
    }
    const attempt = ++sent
    calls.push(`attempt ${attempt}: ${JSON.stringify(opts.headers)}`)
    setImmediate(() => {
      h.onConnect(() => calls.push('aborted'))
      const status = attempt === 1 ? 401 : 200
      const raw = [Buffer.from('WWW-Authenticate'), Buffer.from('Bearer error="invalid_token"')]
      let waiting = false
      const resume = () => {
        resumed++
        if (waiting) h.onComplete([])
      }
      calls.push(`headers ${status} paused=${!h.onHeaders(status, raw, resume, 'x')}`)
      const paused = !h.onData(Buffer.from(attempt === 1 ? 'no' : 'hi'))
      calls.push(`data paused=${paused}`)
      // Like undici: nothing more is delivered while paused.
      if (paused) waiting = true
      else h.onComplete([])
    })
    return true
  }
  const dispatch = (
    accessToken({
      origins: 'http://api.test',
      fetchToken: tokenSource((n) => ({ accessToken: `t${n}`, expiresIn: 3600 })).fetchToken,
    }) as unknown as (d: typeof legacyOnly) => (opts: object, handler: object) => boolean
  )(legacyOnly)
  // The caller reads slowly: it pauses at every chunk and resumes on the next turn.
  const caller = recordingHandler({ calls, prefix: 'caller ', pause: true })
  dispatch({ origin: 'http://api.test', path: '/x', method: 'GET', headers: {} }, caller.handler)
  expect(await caller.ended, String(caller.error)).toBe('end')
  expect(caller.text()).toBe('hi')
  expect(resumed).toBe(1)
  expect(calls).toEqual([
    'caller start',
    'attempt 1: {"authorization":"Bearer t1"}',
    'headers 401 paused=false',
    'data paused=false',
    'attempt 2: {"authorization":"Bearer t2"}',
    'caller status 200',
    'headers 200 paused=false',
    'caller data',
    'data paused=true',
    'caller end', // only once the caller resumed
  ])
})

import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, test } from 'vitest'
import {
  type ApiServer,
  type ApiState,
  createApi,
  createTokenEndpoint,
  startApi,
  startServer,
  type TestServer,
  type TokenEndpointState,
} from './support/servers.js'

const fixture = fileURLToPath(new URL('./fixtures/global-dispatcher.js', import.meta.url))

let api: ApiState
let idp: TokenEndpointState
let other: ApiServer
let combined: TestServer

beforeAll(async () => {
  other = await startApi({ accept: () => true })
  // The token endpoint shares the API's origin: /token must never be decorated.
  idp = createTokenEndpoint({
    respond: () => ({ body: { access_token: 'token-1', token_type: 'Bearer', expires_in: 60 } }),
  })
  api = createApi({
    accept: (authorization) => authorization === 'Bearer token-1',
    respond: (_, accepted) => ({ status: accepted ? 200 : 401 }),
  })
  combined = await startServer((req, res, body) =>
    (req.url === '/token' ? idp : api).handle(req, res, body),
  )
})

afterAll(async () => {
  await Promise.all([other.close(), combined.close()])
})

test('setGlobalDispatcher(getGlobalDispatcher().compose(accessToken(…))): built-in fetch, undici fetch and request all carry the token; one token request; no recursion', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [fixture, combined.origin, `${combined.origin}/token`, other.origin],
    { timeout: 15_000 },
  )
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')
  expect(result.statuses).toEqual(Array(20).fill(200))
  expect(result.undiciFetch).toBe(200)
  expect(result.request).toBe(200)
  expect(result.elsewhere).toBe(200)
  expect(idp.requests).toHaveLength(1)
  // the client's own credentials, not a bearer token
  expect(idp.requests[0]?.headers.authorization).toMatch(/^Basic /)
  expect(api.hits).toHaveLength(22)
  expect(api.hits.every((hit) => hit.authorization === 'Bearer token-1')).toBe(true)
  expect(other.hits[0]?.authorization).toBeUndefined()
})

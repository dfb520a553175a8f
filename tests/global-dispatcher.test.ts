import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { type ApiServer, startApi } from './support/servers.js'
import { type SharedOrigin, startSharedOrigin } from './support/shared-origin.js'

const fixture = fileURLToPath(new URL('./fixtures/global-dispatcher.js', import.meta.url))

let other: ApiServer
let combined: SharedOrigin

beforeAll(async () => {
  other = await startApi({ accept: () => true })
  // The token endpoint shares the API's origin: /token must never be decorated.
  combined = await startSharedOrigin({
    tokenEndpoint: {
      respond: () => ({ body: { access_token: 'token-1', token_type: 'Bearer', expires_in: 60 } }),
    },
    api: {
      accept: (authorization) => authorization === 'Bearer token-1',
      respond: (_, accepted) => ({ status: accepted ? 200 : 401 }),
    },
  })
})

afterAll(async () => {
  await Promise.all([other.close(), combined.close()])
})

test('setGlobalDispatcher(getGlobalDispatcher().compose(accessToken(…))): built-in fetch, undici fetch and request all carry the token; one token request; no recursion', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [fixture, combined.origin, combined.tokenUrl, other.origin],
    { timeout: 15_000 },
  )
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')
  expect(result.statuses).toEqual(Array(20).fill(200))
  expect(result.undiciFetch).toBe(200)
  expect(result.request).toBe(200)
  expect(result.elsewhere).toBe(200)
  const { tokenEndpoint, api } = combined
  expect(tokenEndpoint.requests).toHaveLength(1)
  // the client's own credentials, not a bearer token
  expect(tokenEndpoint.requests[0]?.headers.authorization).toMatch(/^Basic /)
  expect(api.hits).toHaveLength(22)
  expect(api.hits.every((hit) => hit.authorization === 'Bearer token-1')).toBe(true)
  expect(other.hits[0]?.authorization).toBeUndefined()
})

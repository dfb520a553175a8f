import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { type ApiServer, startApi, startServer, type TestServer } from './helpers/servers.js'

const fixture = fileURLToPath(new URL('./fixtures/global-dispatcher.js', import.meta.url))

let api: ApiServer
let other: ApiServer
let tokenRequests: (string | undefined)[]
let combined: TestServer

beforeAll(async () => {
  api = await startApi()
  other = await startApi()
  other.accept = () => true
  tokenRequests = []
  // The token endpoint shares the API's origin: /token must never be decorated.
  combined = await startServer((req, res, body) => {
    if (req.url === '/token') {
      tokenRequests.push(req.headers.authorization)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ access_token: 'token-1', token_type: 'Bearer', expires_in: 60 }))
      return
    }
    api.hits.push({
      authorization: req.headers.authorization,
      method: req.method ?? '',
      url: req.url ?? '',
      body: body.toString(),
      headers: req.headers,
    })
    res.writeHead(req.headers.authorization === 'Bearer token-1' ? 200 : 401)
    res.end()
  })
})

afterAll(async () => {
  await Promise.all([api.close(), other.close(), combined.close()])
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
  expect(tokenRequests).toHaveLength(1)
  expect(tokenRequests[0]).toMatch(/^Basic /) // the client's own credentials, not a bearer token
  expect(api.hits).toHaveLength(22)
  expect(api.hits.every((hit) => hit.authorization === 'Bearer token-1')).toBe(true)
  expect(other.hits[0]?.authorization).toBeUndefined()
})

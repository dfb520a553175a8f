import { Readable } from 'node:stream'
import fc from 'fast-check'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { accessToken, TokenRequestError } from '../lib/index.js'
import { type ApiServer, startApi } from './support/servers.js'

/** What the API answers, per request: set by each property run. */
interface ApiScript {
  statuses: number[]
  challenge: string | undefined
}

let api: ApiServer
let other: ApiServer
let script: ApiScript = { statuses: [200], challenge: undefined }

beforeAll(async () => {
  api = await startApi({
    respond: () => {
      const status = script.statuses.shift() ?? 200
      const headers: Record<string, string> = {}
      if (status === 401 && script.challenge !== undefined)
        headers['www-authenticate'] = script.challenge
      return { status, headers, body: `status ${status}` }
    },
  })
  other = await startApi({ respond: () => ({ body: 'other' }) })
})

afterAll(async () => {
  await Promise.all([api.close(), other.close()])
})

const headerName = fc.constantFrom(
  'authorization',
  'Authorization',
  'AUTHORIZATION',
  'x-trace',
  'X-Custom',
  'accept',
)
const headerValue = fc.stringMatching(/^[\x21-\x7e]{1,20}$/)
const headerEntries = fc.uniqueArray(fc.tuple(headerName, headerValue), {
  selector: ([name]) => name.toLowerCase(),
  maxLength: 4,
})
const headersOfAnyShape = headerEntries.chain((entries) =>
  fc.constantFrom<unknown>(
    Object.fromEntries(entries),
    entries.flat(),
    entries.map(([name, value]) => [name, value]),
    new Map(entries),
    undefined,
  ),
)
const bodyBytes = fc.uint8Array({ maxLength: 2048 })
const body = fc.oneof(
  fc.constant(null),
  fc.string({ maxLength: 200 }),
  bodyBytes.map((bytes) => Buffer.from(bytes)),
  bodyBytes.map((bytes) => () => Readable.from([Buffer.from(bytes)])),
  bodyBytes.map(
    (bytes) => () =>
      (async function* () {
        yield bytes.subarray(0, bytes.length / 2)
        yield bytes.subarray(bytes.length / 2)
      })(),
  ),
)
const challenge = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    'Bearer error="invalid_token"',
    'Bearer realm="x", error="insufficient_scope"',
    'Bearer error=invalid_request, error_description="bad"',
    'DPoP algs="ES256", Bearer error="invalid_token"',
    'Basic realm="x"',
  ),
  fc.stringMatching(/^[\x20-\x7e]{0,60}$/),
)
const tokenAnswer = fc.oneof(
  fc.record({
    accessToken: fc.stringMatching(/^[A-Za-z0-9._~+/-]{1,40}$/),
    expiresIn: fc.integer({ min: 1, max: 7200 }),
  }),
  fc.constant('fail' as const),
)

test('random header shapes, bodies, challenges and token answers: no crash, no token off-origin, every request settles', async () => {
  let runs = 0
  await fc.assert(
    fc.asyncProperty(
      headersOfAnyShape,
      body,
      fc.constantFrom('GET', 'POST', 'PUT'),
      fc.array(fc.constantFrom(200, 401, 401, 403, 500), { minLength: 1, maxLength: 3 }),
      challenge,
      fc.array(tokenAnswer, { minLength: 1, maxLength: 3 }),
      fc.boolean(),
      async (headers, bodyOf, method, statuses, wwwAuthenticate, answers, toOther) => {
        runs++
        const issued: string[] = []
        const agent = new Agent()
        const dispatcher = agent.compose(
          accessToken({
            origins: api.origin,
            minRenewalInterval: 0,
            backoff: false,
            fetchToken: async () => {
              const answer = answers.shift() ?? 'fail'
              if (answer === 'fail') throw new TokenRequestError('no token this time')
              const accessToken = `${answer.accessToken}-${runs}-${issued.length}`
              issued.push(accessToken)
              return { accessToken, expiresIn: answer.expiresIn }
            },
          }),
        )
        script = { statuses: [...statuses], challenge: wwwAuthenticate }
        api.reset()
        other.reset()
        const sent = typeof bodyOf === 'function' ? bodyOf() : bodyOf
        const outcome = await request(`${toOther ? other.origin : api.origin}/p`, {
          dispatcher,
          method,
          headers: headers as Record<string, string>,
          body: method === 'GET' ? null : (sent as string),
        }).then(
          async (response) => ({ status: response.statusCode, text: await response.body.text() }),
          (error: unknown) => ({ error }),
        )
        await agent.close()

        // Never a token on another origin.
        for (const hit of other.hits) {
          const raw = JSON.stringify(hit.rawHeaders)
          for (const token of issued) expect(raw).not.toContain(token)
        }
        if (toOther) {
          // Passed through untouched: undici itself refuses an array of [name, value] pairs.
          const pairs = Array.isArray(headers) && Array.isArray(headers[0])
          if (pairs && 'error' in outcome)
            expect(outcome.error).not.toBeInstanceOf(TokenRequestError)
          else expect(outcome).toEqual({ status: 200, text: 'other' })
          return
        }
        if ('error' in outcome) {
          // Fail closed: only when no token could be had, and then nothing reached the API unauthenticated.
          expect(outcome.error).toBeInstanceOf(TokenRequestError)
        } else {
          // The answer is one the API gave, and the API saw at most two attempts.
          expect(outcome.text).toBe(`status ${outcome.status}`)
          expect(api.hits.length).toBeLessThanOrEqual(2)
          if (api.hits.length === 2) expect(api.hits[1]?.bytes).toEqual(api.hits[0]?.bytes) // same bytes resent
        }
        for (const hit of api.hits) expect(hit.authorization).toMatch(/^Bearer \S+$/)
      },
    ),
    { numRuns: Number(process.env.PROPERTY_RUNS ?? 120) },
  )
})

import fc from 'fast-check'
import { Agent } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientCredentials, TokenRequestError, type TokenResponse } from '../lib/index.js'
import { toToken } from '../lib/token.js'
import { turns } from './support/async.js'
import { unsignedJwt } from './support/jwt.js'
import { startServer, type TestServer } from './support/servers.js'

/*
 * Whatever a token endpoint answers, clientCredentials() resolves to a token
 * response with a non-empty access token or rejects with a TokenRequestError —
 * never another exception, never an unhandled rejection. And whatever a token
 * source returns, toToken() makes a usable Token of it or throws TokenRequestError.
 */

interface GeneratedAnswer {
  status: number
  contentType: string | undefined
  retryAfter: string | undefined
  body: string | Uint8Array
}

const current: { answer: GeneratedAnswer } = {
  answer: { status: 200, contentType: undefined, retryAfter: undefined, body: '' },
}
let endpoint: TestServer
let agent: Agent
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason)
}

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled)
  agent = new Agent()
  endpoint = await startServer((_req, res) => {
    const { status, contentType, retryAfter, body } = current.answer
    const headers: Record<string, string> = {}
    if (contentType !== undefined) headers['content-type'] = contentType
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter
    res.writeHead(status, headers)
    res.end(body)
  })
})

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled)
  await agent.close()
  await endpoint.close()
})

/** A header value Node accepts: visible ASCII, inner spaces. */
const headerValue = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,38}[\x21-\x7e])?$/)

/** Any JSON value, and the odd shapes token endpoints send. */
const jsonish: fc.Arbitrary<unknown> = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('', '3600', '0', '-5', 'abc', '1e12', 'Bearer', 'bearer'),
  fc.jsonValue({ maxDepth: 2 }),
)

/** Objects that look like RFC 6749 §5.1/§5.2 responses, with fields of any type. */
const tokenLike = fc.record(
  {
    access_token: fc.oneof(fc.string({ minLength: 1 }), jsonish),
    token_type: fc.oneof(fc.constantFrom('Bearer', 'bearer', 'DPoP', 'N_A'), jsonish),
    expires_in: fc.oneof(fc.integer({ min: -10, max: 100_000 }), jsonish),
    scope: jsonish,
    error: fc.oneof(fc.constantFrom('invalid_client', 'invalid_scope', ''), jsonish),
    error_description: jsonish,
    error_uri: jsonish,
    id_token: jsonish,
  },
  { requiredKeys: [] },
)

const body: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  tokenLike.map((value) => JSON.stringify(value)),
  // A "__proto__" member: JSON.parse makes it an own field, which must stay one.
  fc
    .tuple(tokenLike, jsonish)
    .map(([value, proto]) =>
      JSON.stringify(value).replace(/^\{(.)/, (_, next: string) =>
        next === '}'
          ? `{"__proto__":${JSON.stringify(proto)}}`
          : `{"__proto__":${JSON.stringify(proto)},${next}`,
      ),
    ),
  fc.json({ maxDepth: 3 }),
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }),
  // Valid JSON, cut short.
  fc
    .tuple(
      tokenLike.map((value) => JSON.stringify(value)),
      fc.nat(),
    )
    .map(([json, cut]) => json.slice(0, cut % (json.length + 1))),
)

const answer: fc.Arbitrary<GeneratedAnswer> = fc.record({
  status: fc.oneof(
    fc.constantFrom(200, 201, 204, 301, 302, 303, 307, 308, 400, 401, 403, 429, 500, 502, 503),
    fc.integer({ min: 200, max: 599 }),
  ),
  contentType: fc.option(
    fc.oneof(
      fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'text/html',
        'text/plain',
        'application/x-www-form-urlencoded',
      ),
      headerValue,
    ),
    { nil: undefined },
  ),
  retryAfter: fc.option(
    fc.oneof(
      fc.nat().map(String),
      fc.date({ noInvalidDate: true }).map((date) => date.toUTCString()),
      headerValue,
    ),
    { nil: undefined },
  ),
  body,
})

const transports = [
  { transport: 'global fetch', dispatcher: () => undefined },
  { transport: 'an undici Agent', dispatcher: () => agent },
]

describe.each(transports)('clientCredentials() over $transport', ({ dispatcher }) => {
  it('resolves to a token response or rejects with a TokenRequestError, whatever the endpoint answers', async () => {
    await fc.assert(
      fc.asyncProperty(answer, async (generated) => {
        current.answer = generated
        const fetchToken = clientCredentials({
          tokenUrl: `${endpoint.origin}/token`,
          clientId: 'property-client',
          clientSecret: 'property-secret-0b5e',
          dispatcher: dispatcher(),
        })
        let outcome: { response: TokenResponse } | { error: unknown }
        try {
          outcome = {
            response: await fetchToken({ key: 'default', signal: AbortSignal.timeout(5000) }),
          }
        } catch (error) {
          outcome = { error }
        }
        if ('response' in outcome) {
          expect(generated.status).toBeGreaterThanOrEqual(200)
          expect(generated.status).toBeLessThan(300)
          expect(typeof outcome.response.accessToken).toBe('string')
          expect(outcome.response.accessToken.length).toBeGreaterThan(0)
          expect(Object.getPrototypeOf(outcome.response)).toBe(Object.prototype)
        } else {
          expect(outcome.error).toBeInstanceOf(TokenRequestError)
          const error = outcome.error as TokenRequestError
          expect(error.name).toBe('TokenRequestError')
          // Every answer arrived, so every error knows the status it came with — except
          // that fetch() turns a 407 into a network error (Fetch standard, HTTP-network-or-cache fetch).
          if (!(generated.status === 407 && dispatcher() === undefined)) {
            expect(error.status).toBe(generated.status)
          }
          expect(error.message).not.toContain('property-secret-0b5e')
          if (error.retryAfter !== undefined) {
            expect(Number.isInteger(error.retryAfter)).toBe(true)
            expect(error.retryAfter).toBeGreaterThanOrEqual(0)
          }
        }
      }),
      { numRuns: 150 },
    )
    // Let any stray rejection surface before looking.
    await turns()
    expect(unhandled).toEqual([])
  })
})

const standardFields = ['access_token', 'token_type', 'expires_in', 'scope']

/** A well-formed RFC 6749 §5.1 answer with any extra fields. */
const success = fc.record({
  status: fc.constantFrom(200, 201),
  fields: fc.record(
    {
      access_token: fc.string({ minLength: 1 }),
      token_type: fc.constantFrom('Bearer', 'bearer', 'DPoP', 'N_A'),
      expires_in: fc.oneof(
        fc.integer({ min: 1, max: 86_400 }),
        fc.nat().map(String),
        fc.constant(null),
      ),
      scope: fc.oneof(fc.string(), fc.constant(null)),
    },
    { requiredKeys: ['access_token'] },
  ),
  extra: fc.dictionary(
    fc.string().filter((key) => !standardFields.includes(key) && key !== '__proto__'),
    fc.jsonValue({ maxDepth: 2 }),
    { maxKeys: 5 },
  ),
})

describe.each(transports)('a well-formed answer over $transport', ({ dispatcher }) => {
  it('resolves to its fields, the standard ones camelCased, the rest under their wire names', async () => {
    await fc.assert(
      fc.asyncProperty(success, async ({ status, fields, extra }) => {
        current.answer = {
          status,
          contentType: 'application/json',
          retryAfter: undefined,
          body: JSON.stringify({ ...extra, ...fields }),
        }
        const fetchToken = clientCredentials({
          tokenUrl: `${endpoint.origin}/token`,
          clientId: 'property-client',
          clientSecret: 'property-secret-0b5e',
          dispatcher: dispatcher(),
        })
        const response = await fetchToken({ key: 'default', signal: AbortSignal.timeout(5000) })
        // JSON round trip: -0 and the like arrive as JSON makes them.
        const expected: Record<string, unknown> = {
          ...(JSON.parse(JSON.stringify(extra)) as Record<string, unknown>),
          accessToken: fields.access_token,
        }
        if (fields.token_type !== undefined) expected.tokenType = fields.token_type
        if (fields.expires_in !== undefined && fields.expires_in !== null) {
          expected.expiresIn = fields.expires_in
        }
        if (fields.scope !== undefined) expected.scope = fields.scope
        expect(response).toStrictEqual(expected)
      }),
      { numRuns: 100 },
    )
  })
})

/** A JWT-shaped access token whose payload carries `exp` (any JSON). */
const jwt = fc
  .record({ exp: fc.oneof(fc.integer(), fc.double(), jsonish) }, { requiredKeys: [] })
  .map((payload) => unsignedJwt(payload, { header: { alg: 'none' }, signature: 'sig' }))

const now = fc.integer({ min: 0, max: 4_102_444_800_000 }) // up to 2100

/** fc.anything() including the awkward ones: null prototypes, bigints, boxed values. */
const awkward = fc.anything({ withNullPrototype: true, withBigInt: true, withBoxedValues: true })

const expiresIn = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.integer({ min: -1000, max: 400_000_000 }),
  fc.double(),
  fc.constantFrom('3600', ' 60 ', '0', '-5', 'abc', '1e12', '1.5', ''),
  fc.nat().map(String),
  fc.string(),
  awkward,
)

describe('toToken()', () => {
  it('returns a usable Token or throws TokenRequestError, whatever the token source returned', () => {
    fc.assert(
      fc.property(
        now,
        fc.oneof(fc.string(), jwt, awkward),
        fc.oneof(fc.constant(undefined), fc.constantFrom('Bearer', 'DPoP', ''), awkward),
        expiresIn,
        fc.oneof(
          fc.constant(undefined),
          fc.constant(null),
          fc.double(),
          fc.integer({ min: -1, max: 4_102_444_800_000 }),
          fc.date(),
          fc.string(),
          awkward,
        ),
        (clock, accessToken, tokenType, lifetime, expiresAt) => {
          const response = { accessToken, tokenType, expiresIn: lifetime, expiresAt }
          let token: ReturnType<typeof toToken>
          try {
            token = toToken(response as unknown as TokenResponse, clock, 300_000)
          } catch (error) {
            expect(error).toBeInstanceOf(TokenRequestError)
            return
          }
          expect(typeof token.accessToken).toBe('string')
          expect(token.accessToken.length).toBeGreaterThan(0)
          expect(token.expiresAt).toBeGreaterThan(clock)
          expect(token.obtainedAt).toBe(clock)
          expect(typeof token.tokenType).toBe('string')
          expect(token.tokenType.length).toBeGreaterThan(0)
        },
      ),
      { numRuns: 200 },
    )
  })

  it('takes expires_in, as a number or a numeric string, over expiresAt', () => {
    fc.assert(
      fc.property(
        now,
        fc.integer({ min: 1, max: 315_360_000 }),
        fc.boolean(),
        (clock, seconds, asString) => {
          const token = toToken(
            {
              accessToken: 'a',
              expiresIn: (asString ? String(seconds) : seconds) as number,
              expiresAt: 1,
            },
            clock,
            300_000,
          )
          expect(token.expiresIn).toBe(seconds)
          expect(token.expiresAt).toBe(clock + seconds * 1000)
          expect(token.obtainedAt).toBe(clock)
        },
      ),
      { numRuns: 100 },
    )
  })

  // Found by the property above (when toToken lived in token-cache.ts), pinned here.
  it('refuses an expires_in too small to outlast the clock (expiresAt would equal now)', () => {
    const clock = 1_700_000_000_000
    expect(() => toToken({ accessToken: 'a', expiresIn: 1e-10 }, clock, 300_000)).toThrow(
      TokenRequestError,
    )
    expect(() => toToken({ accessToken: 'a', expiresIn: 5e-324 }, clock, 300_000)).toThrow(
      TokenRequestError,
    )
  })

  it('refuses with a TokenRequestError an expires_in that String() cannot convert', () => {
    const expiresIn = Object.create(null) as number
    expect(() => toToken({ accessToken: 'a', expiresIn }, 0, 300_000)).toThrow(TokenRequestError)
  })

  it('refuses with a TokenRequestError an expiresAt that Number() cannot convert', () => {
    const expiresAt = { toString: 0, valueOf: 0 } as unknown as number
    expect(() => toToken({ accessToken: 'a', expiresAt }, 0, 300_000)).toThrow(TokenRequestError)
    const nullPrototype = Object.create(null) as number
    expect(() => toToken({ accessToken: 'a', expiresAt: nullPrototype }, 0, 300_000)).toThrow(
      TokenRequestError,
    )
  })
})

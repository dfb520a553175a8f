import { describe, expect, it } from 'vitest'
import { jwtExpiry, jwtTimes } from '../lib/jwt.js'
import { segment, unsignedJwt } from './support/jwt.js'

/** An unsigned JWT: header.payload.signature. */
const jwt = (payload: unknown, signature?: string): string => unsignedJwt(payload, { signature })

describe('jwtExpiry', () => {
  it('reads exp (seconds) as epoch ms', () => {
    expect(jwtExpiry(jwt({ sub: 'svc', exp: 1_767_225_600 }))).toBe(1_767_225_600_000)
    expect(jwtExpiry(jwt({ exp: 1_767_225_600.5 }))).toBe(1_767_225_600_500)
  })

  it('accepts an unsecured JWT with an empty signature segment', () => {
    expect(jwtExpiry(jwt({ exp: 2_000_000_000 }, ''))).toBe(2_000_000_000_000)
  })

  it('reads a payload whose base64url needs the - and _ characters', () => {
    // '>>>' and '???' encode to base64 with + and /, i.e. - and _ in base64url.
    const payload = segment({ note: '>>>???', exp: 1_900_000_000 })
    expect(payload).toMatch(/[-_]/)
    expect(jwtExpiry(`${segment({ alg: 'none' })}.${payload}.sig`)).toBe(1_900_000_000_000)
  })

  it('is undefined for a token that is not a JWT', () => {
    expect(jwtExpiry('opaque-access-token')).toBeUndefined()
    expect(jwtExpiry('')).toBeUndefined()
    expect(jwtExpiry('...')).toBeUndefined()
    expect(jwtExpiry(`.${segment({ exp: 2_000_000_000 })}.sig`)).toBeUndefined()
  })

  it('is undefined for 2 or 4 segments, even with a good payload', () => {
    const header = segment({ alg: 'none' })
    const payload = segment({ exp: 2_000_000_000 })
    expect(jwtExpiry(`${header}.${payload}`)).toBeUndefined()
    expect(jwtExpiry(`${header}.${payload}.sig.extra`)).toBeUndefined()
    // A JWE has 5 segments: not something whose payload we can read.
    expect(jwtExpiry(`${header}.${payload}.a.b.c`)).toBeUndefined()
  })

  it('is undefined when the payload is not base64url JSON', () => {
    const header = segment({ alg: 'none' })
    expect(jwtExpiry(`${header}.!!!not-base64!!!.sig`)).toBeUndefined()
    expect(jwtExpiry(`${header}.${segment('{"exp": 2000000000', true)}.sig`)).toBeUndefined()
    expect(jwtExpiry(`${header}.${segment('exp=2000000000', true)}.sig`)).toBeUndefined()
    expect(jwtExpiry(`${header}..sig`)).toBeUndefined()
  })

  it('is undefined when the payload is JSON but not an object with a numeric exp', () => {
    expect(jwtExpiry(jwt({ sub: 'no exp' }))).toBeUndefined()
    expect(jwtExpiry(jwt({ exp: '2000000000' }))).toBeUndefined()
    expect(jwtExpiry(jwt({ exp: null }))).toBeUndefined()
    expect(jwtExpiry(jwt({ exp: true }))).toBeUndefined()
    expect(jwtExpiry(jwt({ exp: [2_000_000_000] }))).toBeUndefined()
    expect(jwtExpiry(jwt(null))).toBeUndefined()
    expect(jwtExpiry(jwt(2_000_000_000))).toBeUndefined()
    expect(jwtExpiry(jwt([2_000_000_000]))).toBeUndefined()
    // 1e400 parses to Infinity: not a finite expiry.
    const header = segment({ alg: 'none' })
    expect(jwtExpiry(`${header}.${segment('{"exp":1e400}', true)}.sig`)).toBeUndefined()
  })
})

describe("jwtTimes (guards 'the earlier of expires_in and a JWT exp wins')", () => {
  it('reads exp, iat and nbf (seconds) as epoch ms', () => {
    expect(jwtTimes(jwt({ iat: 1_767_225_000, nbf: 1_767_225_000, exp: 1_767_225_600 }))).toEqual({
      exp: 1_767_225_600_000,
      iat: 1_767_225_000_000,
      nbf: 1_767_225_000_000,
    })
    expect(jwtTimes(jwt({ sub: 'svc', exp: 1_767_225_600.5 }))).toEqual({ exp: 1_767_225_600_500 })
  })

  it('is undefined where jwtExpiry is (not a JWT, no numeric exp)', () => {
    expect(jwtTimes('opaque-access-token')).toBeUndefined()
    expect(jwtTimes(jwt({ sub: 'no exp' }))).toBeUndefined()
    expect(jwtTimes(jwt({ exp: '2000000000' }))).toBeUndefined()
  })

  it.each([
    ['iat after exp', { iat: 2_000_000_001, exp: 2_000_000_000 }],
    ['iat equal to exp', { iat: 2_000_000_000, exp: 2_000_000_000 }],
    ['nbf after exp', { nbf: 2_000_003_600, exp: 2_000_000_000 }],
    ['iat a string', { iat: '1999999000', exp: 2_000_000_000 }],
    ['nbf null', { nbf: null, exp: 2_000_000_000 }],
    ['iat negative', { iat: -1, exp: 2_000_000_000 }],
    ['exp zero', { exp: 0 }],
    ['exp negative', { exp: -60 }],
  ])('is undefined when the claims make no sense: %s', (_, claims) => {
    expect(jwtTimes(jwt(claims))).toBeUndefined()
  })
})

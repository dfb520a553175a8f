import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import {
  type Challenge,
  challengeAllowsRetry,
  challengeError,
  parseChallenges,
} from '../lib/oauth/www-authenticate.js'

/** Plain objects, so that `toEqual` failures print readably (params have a null prototype). */
function plain(challenges: Challenge[]) {
  return challenges.map(({ scheme, params, token68 }) => ({
    scheme,
    params: { ...params },
    ...(token68 === undefined ? {} : { token68 }),
  }))
}

describe('parseChallenges', () => {
  test.each<[string, string | string[] | undefined]>([
    ['undefined', undefined],
    ['an empty string', ''],
    ['no header lines', []],
    ['only whitespace and empty list elements', ' ,\t, ,,'],
    ['empty header lines', ['', ' , ']],
  ])('%s: no challenge', (_, header) => {
    expect(parseChallenges(header)).toEqual([])
  })

  test('a scheme alone', () => {
    const [challenge, ...rest] = parseChallenges('Bearer')
    expect(rest).toEqual([])
    expect(challenge?.scheme).toBe('bearer')
    expect(challenge?.token68).toBeUndefined()
    expect({ ...challenge?.params }).toEqual({})
  })

  // One header each, and every challenge it must yield.
  test.each<[string, string, ReturnType<typeof plain>]>([
    [
      'RFC 6750 §3 example',
      'Bearer realm="example", error="invalid_token", error_description="The access token expired"',
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'example',
            error: 'invalid_token',
            error_description: 'The access token expired',
          },
        },
      ],
    ],
    [
      'several challenges in one value',
      'Bearer realm="a", error="invalid_token", DPoP algs="ES256", Basic realm="x"',
      [
        { scheme: 'bearer', params: { realm: 'a', error: 'invalid_token' } },
        { scheme: 'dpop', params: { algs: 'ES256' } },
        { scheme: 'basic', params: { realm: 'x' } },
      ],
    ],
    [
      'RFC 9110 §11.6.1 example: token values, escaped quotes',
      'Basic realm="simple", Newauth realm="apps", type=1, title="Login to \\"apps\\""',
      [
        { scheme: 'basic', params: { realm: 'simple' } },
        { scheme: 'newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
      ],
    ],
    [
      'commas, equals signs and scheme names inside quoted strings are not structure',
      'Bearer error_description="a, b=c, Basic realm=\\"x\\", error=invalid_request", error="invalid_token"',
      [
        {
          scheme: 'bearer',
          params: {
            error_description: 'a, b=c, Basic realm="x", error=invalid_request',
            error: 'invalid_token',
          },
        },
      ],
    ],
    [
      'a token68 keeps its case; an auth-param after it is malformed and skipped',
      'Negotiate AbC=, realm="x", Basic',
      [
        { scheme: 'negotiate', params: {}, token68: 'AbC=' },
        { scheme: 'basic', params: {} },
      ],
    ],
    [
      'bad whitespace around "=", tabs, and empty list elements',
      ' ,\tBearer  realm = "a" ,, ,\terror\t=\tinvalid_token , ,Basic,',
      [
        { scheme: 'bearer', params: { realm: 'a', error: 'invalid_token' } },
        { scheme: 'basic', params: {} },
      ],
    ],
    [
      'a value that is neither a token nor a quoted-string is dropped, not taken in part',
      'Bearer realm="x", error=invalid_token/x, scope="a"b',
      [{ scheme: 'bearer', params: { realm: 'x' } }],
    ],
    [
      'a token followed by something other than space, "=", "," or the end starts no challenge',
      'Bearer x/y=z, Basic, Newauth"realm", NTLM',
      [
        { scheme: 'bearer', params: {} },
        { scheme: 'basic', params: {} },
        { scheme: 'ntlm', params: {} },
      ],
    ],
  ])('%s', (_, header, challenges) => {
    expect(plain(parseChallenges(header))).toEqual(challenges)
  })

  test('quoted-pairs: \\" and \\\\ and any other escaped character', () => {
    const header = String.raw`Bearer a="x\"y", b="back\\slash", c="\q\ ", d="\\", e=""`
    expect({ ...parseChallenges(header)[0]?.params }).toEqual({
      a: 'x"y',
      b: 'back\\slash',
      c: 'q ',
      d: '\\',
      e: '',
    })
  })

  test('token68', () => {
    expect(plain(parseChallenges('Negotiate abc=='))).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'abc==' },
    ])
    expect(plain(parseChallenges('Negotiate YIIB+/w.-_~9=, Basic realm="x"'))).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'YIIB+/w.-_~9=' },
      { scheme: 'basic', params: { realm: 'x' } },
    ])
    expect(plain(parseChallenges('Negotiate  abc  ,  NTLM'))).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'abc' },
      { scheme: 'ntlm', params: {} },
    ])
  })

  test('scheme and parameter names are case-insensitive (lower-cased); values keep their case', () => {
    expect(plain(parseChallenges('BEARER Realm="MixedCase", ERROR=Invalid_Token'))).toEqual([
      { scheme: 'bearer', params: { realm: 'MixedCase', error: 'Invalid_Token' } },
    ])
    expect(plain(parseChallenges('dpop ALGS="ES256"'))).toEqual([
      { scheme: 'dpop', params: { algs: 'ES256' } },
    ])
  })

  test('several header lines, in order; a challenge does not continue across lines', () => {
    expect(
      plain(parseChallenges(['Basic realm="x"', 'Bearer error="invalid_token"', 'DPoP'])),
    ).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { error: 'invalid_token' } },
      { scheme: 'dpop', params: {} },
    ])
    // the second line starts with an auth-param: it has no scheme to belong to
    expect(plain(parseChallenges(['Bearer realm="x"', 'error="invalid_request"']))).toEqual([
      { scheme: 'bearer', params: { realm: 'x' } },
    ])
  })

  test('a repeated parameter keeps its first value', () => {
    expect(
      parseChallenges('Bearer error="invalid_token", ERROR="invalid_request"')[0]?.params,
    ).toMatchInlineSnapshot(`
      {
        "error": "invalid_token",
      }
    `)
  })

  test('__proto__, constructor and other Object.prototype names are plain parameters', () => {
    const [challenge] = parseChallenges(
      'Bearer __proto__="polluted", constructor=x, toString="y", hasOwnProperty=z',
    )
    const params = challenge?.params as Record<string, string>
    expect(Object.getPrototypeOf(params)).toBeNull()
    expect(Object.keys(params)).toEqual(['__proto__', 'constructor', 'tostring', 'hasownproperty'])
    const proto = '__proto__' // a computed key: the name itself, not the accessor
    expect(params[proto]).toBe('polluted')
    expect(params.constructor).toBe('x')
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getPrototypeOf({})).toBe(Object.prototype)
    // names that were not sent are absent, not inherited
    const [bare] = parseChallenges('Bearer realm="x"')
    expect(bare?.params.constructor).toBeUndefined()
    expect(bare?.params.error).toBeUndefined()
    expect(bare?.params[proto]).toBeUndefined()
  })

  test.each([
    ['an unterminated quoted string', 'Bearer realm="x", error="invalid_token'],
    ['an auth-param with no scheme', 'error="invalid_request", Bearer realm="x"'],
    ['an auth-param without a value', 'Bearer realm="x", error= , scope=a'],
    ['an auth-param value that is not a token', 'Bearer realm="x", error=invalid/token'],
    ['garbage after a quoted value', 'Bearer error="a"b"c", realm="x"'],
    ['a quoted string where a scheme belongs', '"Bearer", Bearer realm="x"'],
    ['a lone equals sign', '= , Bearer realm="x"'],
    ['a trailing backslash', 'Bearer realm="x", a="\\'],
    ['control characters and non-ASCII', 'Bearer realm="x", \u0000\u00ff\u2028="y"'],
  ])('malformed input: %s, never throws and keeps what is well-formed', (_, header) => {
    const challenges = parseChallenges(header)
    expect(challenges.some((c) => c.scheme === 'bearer' && c.params.realm === 'x')).toBe(true)
  })

  test('any string, or list of strings, parses without throwing into well-formed challenges', () => {
    const fragment = fc.oneof(
      fc.constantFrom(
        'Bearer',
        'DPoP',
        'Basic',
        ' ',
        '\t',
        ',',
        '=',
        '==',
        '"',
        '\\',
        '\\"',
        'error',
        'realm',
        'invalid_token',
        'abc',
        '/+',
        '__proto__',
      ),
      fc.string({ unit: 'binary', maxLength: 4 }),
    )
    const value = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.array(fragment, { maxLength: 30 }).map((parts) => parts.join('')),
    )
    const tchar = /^[!#$%&'*+.^_`|~0-9a-z-]+$/
    fc.assert(
      fc.property(fc.oneof(value, fc.array(value, { maxLength: 4 })), (header) => {
        const challenges = parseChallenges(header)
        for (const challenge of challenges) {
          expect(challenge.scheme).toMatch(tchar)
          for (const name of Object.keys(challenge.params)) expect(name).toMatch(tchar)
          if (challenge.token68 !== undefined) {
            expect(challenge.token68).toMatch(/^[A-Za-z0-9._~+/-]+=*$/)
            expect(Object.keys(challenge.params)).toEqual([])
          }
        }
        expect(typeof challengeAllowsRetry(header)).toBe('boolean')
      }),
      { numRuns: 2000 },
    )
  })

  test('property: serialised challenges parse back to themselves', () => {
    const tcharString = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/)
    const ows = fc.constantFrom('', ' ', '\t', '  ')
    const paramValue = fc.oneof(
      tcharString.map((v) => ({ value: v, wire: v })),
      fc.string({ maxLength: 20 }).map((v) => ({
        value: v,
        wire: `"${v.replace(/[\\"]/g, '\\$&')}"`,
      })),
    )
    const challenge = fc.oneof(
      fc.record({
        scheme: tcharString,
        params: fc.uniqueArray(fc.tuple(tcharString, paramValue, ows, ows), {
          selector: ([name]) => name.toLowerCase(),
          maxLength: 5,
        }),
      }),
      fc.record({
        scheme: tcharString,
        token68: fc.stringMatching(/^[A-Za-z0-9._~+/-]{1,16}={0,2}$/),
      }),
    )
    fc.assert(
      fc.property(fc.array(challenge, { maxLength: 5 }), ows, (challenges, sep) => {
        const wire = challenges
          .map((c) =>
            'token68' in c
              ? `${c.scheme} ${c.token68}`
              : [
                  c.scheme,
                  c.params.map(([n, v, a, b]) => `${n}${a}=${b}${v.wire}`).join(`${sep},${sep}`),
                ]
                  .filter(Boolean)
                  .join(' '),
          )
          .join(`${sep},${sep}`)
        const expected = challenges.map((c) =>
          'token68' in c
            ? { scheme: c.scheme.toLowerCase(), params: {}, token68: c.token68 }
            : {
                scheme: c.scheme.toLowerCase(),
                params: Object.fromEntries(c.params.map(([n, v]) => [n.toLowerCase(), v.value])),
              },
        )
        expect(plain(parseChallenges(wire))).toEqual(expected)
      }),
      { numRuns: 500 },
    )
  })
})

describe('challengeAllowsRetry (RFC 6750 §3.1)', () => {
  test.each<[string | string[] | undefined, boolean]>([
    [undefined, true],
    ['', true],
    [[], true],
    ['Basic realm="x"', true],
    ['Bearer', true],
    ['Bearer realm="x"', true],
    ['Bearer error="invalid_token"', true],
    ['Bearer realm="x", error="invalid_token", error_description="expired"', true],
    ['bearer ERROR=invalid_token', true],
    ['Bearer error=invalid_request, error_description="bad"', false],
    ['Bearer realm="x", error="invalid_request"', false],
    ['Bearer realm="x", error="insufficient_scope"', false],
    ['Bearer error="INVALID_TOKEN"', false], // error codes are compared exactly
    ['Bearer error=""', false],
    ['DPoP error="invalid_token"', true],
    ['DPoP error="use_dpop_nonce"', false],
    ['DPoP algs="ES256", Bearer error="invalid_token"', true],
    ['Bearer error="insufficient_scope", DPoP error="invalid_token"', true],
    [['Bearer error="invalid_request"', 'Basic realm="x"'], false],
    [['Bearer error="invalid_request"', 'DPoP error="invalid_token"'], true],
    // other schemes' error parameters neither block nor allow a retry
    ['Basic error="invalid_request"', true],
    ['Basic error="invalid_request", Bearer realm="x"', true],
    ['Newauth error="invalid_token", Bearer error="invalid_request"', false],
    // "error" inside a quoted value is not a parameter
    ['Bearer error_description="error=invalid_request"', true],
    ['Bearer error_description="x, error=invalid_request", error="invalid_token"', true],
  ])('%j → %s', (header, allowed) => {
    expect(challengeAllowsRetry(header)).toBe(allowed)
  })
})

describe('challengeError', () => {
  test.each<[string | string[] | undefined, 'bearer' | 'dpop', string | undefined]>([
    [undefined, 'bearer', undefined],
    ['Bearer error="invalid_token"', 'bearer', 'invalid_token'],
    ['Bearer error="invalid_token"', 'dpop', undefined],
    ['DPoP error="use_dpop_nonce", Bearer error="invalid_token"', 'dpop', 'use_dpop_nonce'],
    ['DPoP error="use_dpop_nonce", Bearer error="invalid_token"', 'bearer', 'invalid_token'],
    [['Basic realm="x"', 'dpop error=use_dpop_nonce'], 'dpop', 'use_dpop_nonce'],
    // the first challenge of the scheme decides, even without an error
    ['Bearer realm="x", Bearer error="invalid_token"', 'bearer', undefined],
    ['Basic error="invalid_token"', 'bearer', undefined],
  ])('%j, %s → %s', (header, scheme, error) => {
    expect(challengeError(header, scheme)).toBe(error)
  })
})

describe('a hostile 401 cannot block the event loop', () => {
  const KiB = 1024
  const MiB = 1024 * KiB

  /**
   * Shapes that made the former regex quadratic: from every start position it scanned a run of
   * token characters to its end, then backtracked looking for "=".
   */
  const hostile: [string, (bytes: number) => string][] = [
    ['a run of token characters', (bytes) => `Bearer ${'a'.repeat(bytes - 7)}`],
    [
      'an unterminated quoted string',
      (bytes) => `Bearer error="invalid_token", x="${'a'.repeat(bytes - 33)}`,
    ],
  ]

  function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b)
    return sorted[Math.floor(sorted.length / 2)] as number
  }

  /**
   * CPU milliseconds for `calls` calls of challengeAllowsRetry(header): CPU time, not wall time,
   * so that other processes on a busy machine do not count.
   */
  function time(header: string, calls: number): number {
    const start = process.cpuUsage()
    for (let i = 0; i < calls; i++) challengeAllowsRetry(header)
    const { user, system } = process.cpuUsage(start)
    return (user + system) / 1000
  }

  // No absolute time limit (machines differ): the cost of a 64 KiB challenge relative to a
  // 16 KiB one. Linear parsing gives ≈ 4, a capped one ≈ 1, the former quadratic one ≈ 16.
  test.each(hostile)(
    '%s: parse time grows at most linearly from 16 KiB to 64 KiB',
    (_, make) => {
      const small = make(16 * KiB)
      const large = make(64 * KiB)
      expect(small.length).toBe(16 * KiB)
      expect(large.length).toBe(64 * KiB)
      // warm up: compile, and flatten the strings
      time(small, 1)
      time(large, 1)
      // Batch enough calls that a 16 KiB sample takes 10 ms, to rise above timer noise (the
      // fastest of 3 tries decides, so one stall cannot leave the batch too small). Rounds
      // alternate the sizes and the medians are compared, so that a disturbance touches both.
      let calls = 1
      while (Math.min(...[1, 2, 3].map(() => time(small, calls))) < 10 && calls < 1 << 20)
        calls *= 2
      const smallTimes: number[] = []
      const largeTimes: number[] = []
      for (let round = 0; round < 5; round++) {
        smallTimes.push(time(small, calls))
        largeTimes.push(time(large, calls))
      }
      const ratio = median(largeTimes) / median(smallTimes)
      const detail = `t(64 KiB) / t(16 KiB) = ${ratio.toFixed(1)}; ${calls} calls per sample; ms: 16 KiB ${smallTimes.map((t) => t.toFixed(1))}, 64 KiB ${largeTimes.map((t) => t.toFixed(1))}`
      expect(ratio, detail).toBeLessThan(8)
    },
    120_000,
  )

  test('a 1 MiB challenge is parsed only up to the cap, and returns', () => {
    // Past the cap, nothing counts: the invalid_token at the end is never seen.
    const header = `Bearer error="invalid_request", x=${'a'.repeat(MiB)}, Bearer error="invalid_token"`
    expect(plain(parseChallenges(header))).toEqual([
      { scheme: 'bearer', params: { error: 'invalid_request' } },
    ])
    expect(challengeAllowsRetry(header)).toBe(false)
    expect(challengeError(header, 'bearer')).toBe('invalid_request')
  })

  test('a token cut by the cap is dropped, not taken truncated', () => {
    // "invalid_token_but_longer" cut to "invalid_token" would wrongly allow a retry
    const errors = new Set<string | undefined>()
    const token68s = new Set<number | undefined>()
    for (let pad = 16 * KiB - 80; pad < 16 * KiB; pad++) {
      const header = `Bearer x="${'a'.repeat(pad)}", error=invalid_token_but_longer`
      errors.add(challengeError(header, 'bearer'))
      const token68 = parseChallenges(`Basic realm="x", Negotiate ${'b'.repeat(pad)}`)[1]?.token68
      token68s.add(token68?.length === pad ? -1 : token68?.length)
    }
    // whole while the header ends before the cap, dropped once it is cut
    expect(errors).toEqual(new Set([undefined, 'invalid_token_but_longer']))
    expect(token68s).toEqual(new Set([undefined, -1]))
  })

  test.each<[string, string | string[]]>([
    ['a run of token characters', `Bearer ${'a'.repeat(MiB)}`],
    ['an unterminated quoted string', `Bearer x="${'a'.repeat(MiB)}`],
    ['"a=" without commas', `Bearer ${'a='.repeat(MiB / 2)}`],
    ['escapes', `Bearer x="${'\\"'.repeat(MiB / 2)}"`],
    ['commas', `Bearer${','.repeat(MiB)}`],
    ['many challenges', 'Basic, '.repeat(MiB / 7)],
    [
      'many parameters',
      `Bearer ${Array.from({ length: MiB / 10 }, (_, i) => `p${i}=b`).join(', ')}`,
    ],
    ['many header lines', Array.from({ length: 1024 }, () => `Basic, ${'a=b, '.repeat(205)}`)],
  ])('1 MiB of %s parses (capped) and returns', (_, header) => {
    const challenges = parseChallenges(header)
    expect(challenges.length).toBeLessThanOrEqual(64)
    for (const challenge of challenges) {
      expect(Object.keys(challenge.params).length).toBeLessThanOrEqual(64)
    }
    expect(typeof challengeAllowsRetry(header)).toBe('boolean')
  })
})

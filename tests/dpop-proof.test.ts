/**
 * The exact JSON of a DPoP proof (RFC 9449 §4.2), which DPoPKey.proof() writes as text rather
 * than through JSON.stringify: header and payload byte for byte, the claims, htu without query
 * and fragment, ath, nonce — and inputs from outside (a URL's serialisation, a server's nonce,
 * a custom token source's method) that try to break out of their JSON strings. Signatures are
 * checked with node:crypto (tests/support/dpop.js) and, for the hostile inputs, with jose too.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { EmbeddedJWK, jwtVerify } from 'jose'
import { describe, expect, test } from 'vitest'
import { DPoPKey, jsonString, withoutQuery } from '../lib/dpop/signer.js'
import { decodeProof, verifyProofSignature } from './support/dpop.js'
import { registerSecret } from './support/secret-registry.js'

type Alg = 'ES256' | 'EdDSA'

function newKey(alg: Alg): KeyObject {
  const { privateKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('ed25519')
  registerSecret(privateKey.export({ format: 'jwk' }).d)
  return privateKey
}

const keys = { ES256: newKey('ES256'), EdDSA: newKey('EdDSA') }
const signers = { ES256: new DPoPKey({ key: keys.ES256 }), EdDSA: new DPoPKey({ key: keys.EdDSA }) }
const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url')
/** 16 random bytes, base64url: 22 characters, the last one holding 2 bits. */
const randomJti = /^[A-Za-z0-9_-]{21}[AQgw]$/
/** What the payload's JSON text may contain: printable ASCII only, so nothing raw. */
const printableAscii = /^[\x20-\x7e]*$/

describe.each(['ES256', 'EdDSA'] as const)('%s: the exact JSON', (alg) => {
  const signer = signers[alg]

  test('header: {"alg","typ":"dpop+jwt","jwk"} with the public members only, in that order', () => {
    const { headerJson } = verifyProofSignature(signer.proof('GET', 'https://api.example/x'))
    const jwk = keys[alg].export({ format: 'jwk' })
    const publicJwk =
      alg === 'ES256'
        ? { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }
        : { kty: 'OKP', crv: 'Ed25519', x: jwk.x }
    expect(headerJson).toBe(JSON.stringify({ alg, typ: 'dpop+jwt', jwk: publicJwk }))
  })

  test('payload without token or nonce: {"jti","htm","htu","iat"} exactly', () => {
    const before = Math.floor(Date.now() / 1000)
    const { payloadJson, claims } = verifyProofSignature(
      signer.proof('GET', 'https://api.example/v1/orders/7?expand=items#top'),
    )
    const after = Math.floor(Date.now() / 1000)
    expect(claims.jti).toMatch(randomJti)
    expect(claims.iat).toBeGreaterThanOrEqual(before)
    expect(claims.iat).toBeLessThanOrEqual(after)
    expect(payloadJson).toBe(
      JSON.stringify({
        jti: claims.jti,
        htm: 'GET',
        htu: 'https://api.example/v1/orders/7',
        iat: claims.iat,
      }),
    )
  })

  test('payload with a token and a nonce: ath then nonce, ath = base64url(SHA-256(token))', () => {
    const token = `eyJ.${'t'.repeat(300)}.sig`
    const nonce = 'eyJ7S_zG.1-Nonce~!#$%&()*+,/:;<=>?@[]^`{|}'
    const { payloadJson, claims } = verifyProofSignature(
      signer.proof('POST', 'https://as.example/token', { accessToken: token, nonce }),
    )
    expect(payloadJson).toBe(
      JSON.stringify({
        jti: claims.jti,
        htm: 'POST',
        htu: 'https://as.example/token',
        iat: claims.iat,
        ath: sha256(token),
        nonce,
      }),
    )
    // A nonce of NQCHAR (RFC 9449 §8.1) goes in verbatim, unescaped.
    expect(payloadJson).toContain(`"nonce":"${nonce}"`)
  })

  test('only a nonce, only a token: each claim alone', () => {
    const onlyNonce = decodeProof(signer.proof('GET', 'https://a.example/', { nonce: 'n1' }))
    expect(Object.keys(onlyNonce.claims)).toEqual(['jti', 'htm', 'htu', 'iat', 'nonce'])
    const onlyToken = decodeProof(signer.proof('GET', 'https://a.example/', { accessToken: 'x' }))
    expect(Object.keys(onlyToken.claims)).toEqual(['jti', 'htm', 'htu', 'iat', 'ath'])
    expect(onlyToken.claims.ath).toBe(sha256('x'))
    const neither = decodeProof(signer.proof('GET', 'https://a.example/', {}))
    expect(Object.keys(neither.claims)).toEqual(['jti', 'htm', 'htu', 'iat'])
  })
})

describe('htu: the target URI without query and fragment (RFC 9449 §4.2)', () => {
  test.each([
    ['https://api.example/a/b?x=1&y=2', 'https://api.example/a/b'],
    ['https://api.example/a/b#frag', 'https://api.example/a/b'],
    ['https://api.example/a/b?x=1#f?g', 'https://api.example/a/b'],
    ['https://api.example/a/b#f?g', 'https://api.example/a/b'],
    ['https://api.example/a/b?', 'https://api.example/a/b'],
    ['https://api.example/a/b#', 'https://api.example/a/b'],
    ['https://api.example/?#', 'https://api.example/'],
    ['https://api.example:8443/a%20b/C%2Fd;p=1', 'https://api.example:8443/a%20b/C%2Fd;p=1'],
    ['http://127.0.0.1:1234/', 'http://127.0.0.1:1234/'],
    ['http://[::1]:8080/x?y', 'http://[::1]:8080/x'],
  ])('%s → %s', (url, htu) => {
    expect(withoutQuery(url)).toBe(htu)
    expect(decodeProof(signers.ES256.proof('GET', url)).claims.htu).toBe(htu)
  })

  test('a URL object’s href, as the token request passes it: query and fragment dropped', () => {
    const url = new URL('https://as.example/oauth2/token?tenant=a#x')
    expect(decodeProof(signers.EdDSA.proof('POST', url.href)).claims.htu).toBe(
      'https://as.example/oauth2/token',
    )
  })
})

// Inputs from outside that try to end their JSON string, add claims, or carry bytes a JSON
// text must not hold raw (RFC 8259 §7): each must come back from the signed payload exactly.
const hostile: Array<[string, string]> = [
  ['a quote', 'x"y'],
  ['a backslash', 'x\\y'],
  ['a trailing backslash', 'x\\'],
  ['a claim injection', 'x","htm":"POST","ath":"forged'],
  ['an object close', 'x"}'],
  ['NUL', 'x\u0000y'],
  ['newline, CR, tab, backspace, form feed', 'a\nb\rc\td\be\ff'],
  ['the other C0 controls', String.fromCharCode(...Array.from({ length: 32 }, (_, i) => i))],
  ['DEL', 'x\u007fy'],
  ['Latin-1', 'caf\u00e9 \u00ff'],
  ['BMP non-Latin', '\u20ac \u4e2d\u6587'],
  ['an astral character (a surrogate pair)', 'x\u{1f600}y'],
  ['a lone high surrogate', 'x\ud800y'],
  ['a lone low surrogate', 'x\udc00'],
  ['U+2028 and U+2029', 'a\u2028b\u2029c'],
  ['a BOM', '\ufeffx'],
  ['</script>', '</script><script>'],
]

describe('hostile htu, nonce and htm are escaped, and parse back exactly', () => {
  test.each(hostile)('%s', async (_, text) => {
    const signer = signers.ES256
    const htu = `https://api.example/p/${text}`
    const proof = signer.proof(`G${text}`, `${htu}?q=${text}`, { nonce: text, accessToken: 'tok' })
    const { payloadJson, claims } = verifyProofSignature(proof)
    expect(payloadJson).toMatch(printableAscii)
    expect(claims.htm).toBe(`G${text}`)
    // The query starts at the first "?" of the URL as given (none is in `text`).
    expect(claims.htu).toBe(htu)
    expect(claims.nonce).toBe(text)
    expect(claims.ath).toBe(sha256('tok'))
    expect(Object.keys(claims)).toEqual(['jti', 'htm', 'htu', 'iat', 'ath', 'nonce'])
    // An independent JOSE implementation reads the same claims from the same bytes.
    const { payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' })
    expect(payload).toEqual(claims)
  })

  test('jsonString: every UTF-16 code unit parses back to itself, as printable ASCII', () => {
    const wrong: number[] = []
    for (let code = 0; code <= 0xffff; code++) {
      const text = `a${String.fromCharCode(code)}b`
      const literal = jsonString(text)
      if (!printableAscii.test(literal) || JSON.parse(literal) !== text) wrong.push(code)
    }
    expect(wrong).toEqual([])
  })

  test('jsonString: printable ASCII other than " and \\ is not escaped at all', () => {
    let printable = ''
    for (let code = 0x20; code <= 0x7e; code++) {
      if (code !== 0x22 && code !== 0x5c) printable += String.fromCharCode(code)
    }
    expect(jsonString(printable)).toBe(`"${printable}"`)
    expect(jsonString('')).toBe('""')
    expect(jsonString('"')).toBe('"\\""')
    expect(jsonString('\\')).toBe('"\\\\"')
    expect(jsonString('é')).toBe('"\\u00e9"')
  })
})

test('proofs of many sizes (token and URL lengths) all verify: the signing buffer grows', () => {
  const signer = signers.EdDSA
  for (const size of [0, 1, 100, 700, 1_500, 5_000, 20_000, 300]) {
    const url = `https://api.example/${'p'.repeat(size)}`
    const token = `t${'k'.repeat(size)}`
    const { claims } = verifyProofSignature(signer.proof('GET', url, { accessToken: token }))
    expect(claims.htu).toBe(url)
    expect(claims.ath).toBe(sha256(token))
  }
})

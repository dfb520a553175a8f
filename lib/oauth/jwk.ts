/*
 * A key's public JWK and its RFC 7638 thumbprint: what a DPoP proof carries in its
 * header and what binds a token to the key (`jkt`). Only public members ever leave here.
 */
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { codeOf } from './jws-key.js'

/**
 * The public JWK of a private (or public) asymmetric key: only the public members RFC 7638
 * §3.2 lists for its `kty` (RSA: e, n; EC: crv, x, y; OKP: crv, x) — never a private one.
 */
export function publicJwk(key: KeyObject): JsonWebKey {
  if (key.type === 'secret') throw new TypeError('a secret key has no public JWK')
  let exported: JsonWebKey
  try {
    exported = createPublicKey(key).export({ format: 'jwk' })
  } catch (error) {
    throw new TypeError(
      `key type ${key.asymmetricKeyType ?? '(unknown)'} cannot be exported as a JWK (${codeOf(error)})`,
    )
  }
  switch (exported.kty) {
    case 'RSA':
      return { kty: 'RSA', e: exported.e, n: exported.n }
    case 'EC':
      return { kty: 'EC', crv: exported.crv, x: exported.x, y: exported.y }
    case 'OKP':
      return { kty: 'OKP', crv: exported.crv, x: exported.x }
    default:
      throw new TypeError(`JWK key type ${exported.kty ?? '(unknown)'} is not supported`)
  }
}

/**
 * The RFC 7638 JWK SHA-256 thumbprint, base64url: the hash of the JSON of the key's required
 * members in lexicographic order, without whitespace (§3.2, §3.3).
 */
export function jwkThumbprint(jwk: JsonWebKey): string {
  let members: Record<string, unknown>
  switch (jwk.kty) {
    case 'RSA':
      members = { e: jwk.e, kty: jwk.kty, n: jwk.n }
      break
    case 'EC':
      members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      break
    case 'OKP':
      members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
      break
    default:
      throw new TypeError(`JWK key type ${jwk.kty ?? '(unknown)'} has no thumbprint here`)
  }
  for (const [name, value] of Object.entries(members)) {
    if (typeof value !== 'string' || value.length === 0) {
      throw new TypeError(`the JWK lacks its "${name}" member`)
    }
  }
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url')
}

/*
 * The keys compact JWSs (RFC 7515) are signed with: the algorithms this package signs
 * with, a private key or shared secret imported once, and the check that a key fits its
 * algorithm (RFC 7518's key sizes, curves and RSA-PSS parameters). Errors name what is
 * wrong, never the key. The signer itself is jws.ts.
 */
import { createPrivateKey, createSecretKey, type JsonWebKey, KeyObject } from 'node:crypto'

/** Asymmetric JWS algorithms (RFC 7518 §3.3-3.5, RFC 8037 §3.1 for EdDSA with Ed25519). */
export type AsymmetricAlgorithm =
  | 'RS256'
  | 'RS384'
  | 'RS512'
  | 'PS256'
  | 'PS384'
  | 'PS512'
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'EdDSA'

/** HMAC JWS algorithms (RFC 7518 §3.2). */
export type HmacAlgorithm = 'HS256' | 'HS384' | 'HS512'

export type JwsAlgorithm = AsymmetricAlgorithm | HmacAlgorithm

/** A private key as users give it: a KeyObject, a JWK with its private members, or PEM. */
export type PrivateKeyInput = KeyObject | JsonWebKey | string

export interface AlgorithmSpec {
  /** Key types (`KeyObject.asymmetricKeyType`, or 'secret') the algorithm signs with. */
  readonly keyTypes: readonly string[]
  /** The digest; null for EdDSA, which hashes internally. */
  readonly hash: 'sha256' | 'sha384' | 'sha512' | null
  /** ECDSA: the curve (OpenSSL name) the key must be on. */
  readonly curve?: string
}

const rsa = ['rsa']
const pss = ['rsa', 'rsa-pss']
/** What each algorithm signs with: jws.ts picks its digest here. */
export const algorithmSpecs: Readonly<Record<JwsAlgorithm, AlgorithmSpec>> = {
  RS256: { keyTypes: rsa, hash: 'sha256' },
  RS384: { keyTypes: rsa, hash: 'sha384' },
  RS512: { keyTypes: rsa, hash: 'sha512' },
  PS256: { keyTypes: pss, hash: 'sha256' },
  PS384: { keyTypes: pss, hash: 'sha384' },
  PS512: { keyTypes: pss, hash: 'sha512' },
  ES256: { keyTypes: ['ec'], hash: 'sha256', curve: 'prime256v1' },
  ES384: { keyTypes: ['ec'], hash: 'sha384', curve: 'secp384r1' },
  ES512: { keyTypes: ['ec'], hash: 'sha512', curve: 'secp521r1' },
  EdDSA: { keyTypes: ['ed25519'], hash: null },
  HS256: { keyTypes: ['secret'], hash: 'sha256' },
  HS384: { keyTypes: ['secret'], hash: 'sha384' },
  HS512: { keyTypes: ['secret'], hash: 'sha512' },
}

const digestBytes = { sha256: 32, sha384: 48, sha512: 64 } as const

const curveAlgorithms: Readonly<Record<string, AsymmetricAlgorithm>> = {
  prime256v1: 'ES256',
  secp384r1: 'ES384',
  secp521r1: 'ES512',
}

const supportedKeys = 'RSA, RSA-PSS, EC P-256/P-384/P-521 or Ed25519'

/**
 * Imports a private key once. A KeyObject must be a private one; a JWK must hold its
 * private members (`d`); a string must be an unencrypted PEM private key (PKCS#8, PKCS#1
 * or SEC 1). Errors name what is wrong, never the key: `label` says whose key it is.
 */
export function importPrivateKey(input: PrivateKeyInput, label: string): KeyObject {
  if (input === undefined || input === null || input === '') {
    throw new TypeError(`${label}: a private key is required`)
  }
  if (input instanceof KeyObject) {
    if (input.type === 'public') {
      throw new TypeError(`${label}: this is a public key; a private key is needed`)
    }
    if (input.type === 'secret') {
      throw new TypeError(`${label}: this is a secret (symmetric) key; a private key is needed`)
    }
    return input
  }
  if (typeof input === 'string') return importPem(input, label)
  if (Buffer.isBuffer(input) || ArrayBuffer.isView(input)) {
    throw new TypeError(
      `${label}: a Buffer is not accepted; pass a PEM string, a JWK, or a KeyObject from createPrivateKey()`,
    )
  }
  if (typeof input === 'object' && typeof input.kty === 'string') return importJwk(input, label)
  throw new TypeError(`${label}: must be a KeyObject, a JWK or a PEM string`)
}

function importPem(pem: string, label: string): KeyObject {
  if (!pem.includes('-----BEGIN')) {
    // Never quote the string: it may be a key in another encoding.
    throw new TypeError(
      `${label}: a string key must be PEM ("-----BEGIN PRIVATE KEY-----…"); to use a file, read it first`,
    )
  }
  const hasPrivate = /-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----/.test(pem)
  if (!hasPrivate && /-----BEGIN (?:(?:[A-Z]+ )*PUBLIC KEY|CERTIFICATE)-----/.test(pem)) {
    throw new TypeError(
      `${label}: the PEM holds a public key or certificate; a private key is needed`,
    )
  }
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem)) {
    throw new TypeError(
      `${label}: the PEM private key is encrypted; decrypt it with createPrivateKey({ key, passphrase }) and pass the KeyObject`,
    )
  }
  try {
    return createPrivateKey(pem)
  } catch (error) {
    // OpenSSL's reason only (its code), no cause: nothing from the input reaches the error.
    throw new TypeError(`${label}: the PEM could not be read as a private key (${codeOf(error)})`)
  }
}

function importJwk(jwk: JsonWebKey, label: string): KeyObject {
  if (jwk.kty === 'oct') {
    throw new TypeError(`${label}: this JWK is a secret (oct) key; a private key is needed`)
  }
  if (jwk.d === undefined) {
    throw new TypeError(`${label}: this JWK is a public key (no "d"); a private key is needed`)
  }
  try {
    return createPrivateKey({ key: jwk, format: 'jwk' })
  } catch (error) {
    // Node's messages for a malformed JWK quote member values: only the code goes out.
    throw new TypeError(`${label}: the JWK could not be read as a private key (${codeOf(error)})`)
  }
}

/** The error's code (an OpenSSL or Node reason), never its message, which may quote the input. */
export function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : 'unreadable'
}

/**
 * An HMAC key from a shared secret: the octets of its UTF-8 form, as OIDC Core §9 says for
 * client_secret_jwt.
 */
export function importSecret(secret: string, label: string): KeyObject {
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new TypeError(`${label}: a secret must be a non-empty string`)
  }
  return createSecretKey(Buffer.from(secret, 'utf8'))
}

/** The algorithm a key signs with when none is given. RSA keys default to RS256. */
export function inferAlgorithm(key: KeyObject, label: string): JwsAlgorithm {
  if (key.type === 'secret') return 'HS256'
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'RS256'
    case 'rsa-pss': {
      // An RSA-PSS key may be restricted to one digest (RFC 4055 parameters).
      const hash = key.asymmetricKeyDetails?.hashAlgorithm
      return hash === 'sha384' ? 'PS384' : hash === 'sha512' ? 'PS512' : 'PS256'
    }
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve
      const alg = curve === undefined ? undefined : curveAlgorithms[curve]
      if (alg === undefined) {
        throw new TypeError(
          `${label}: EC curve ${curve ?? '(unknown)'} is not supported; use P-256, P-384 or P-521`,
        )
      }
      return alg
    }
    case 'ed25519':
      return 'EdDSA'
    default:
      throw new TypeError(
        `${label}: key type ${key.asymmetricKeyType ?? '(unknown)'} is not supported; use ${supportedKeys}`,
      )
  }
}

/**
 * Checks that `alg` is one this module signs with and that `key` can sign it; throws a
 * TypeError naming the mismatch (never the key).
 */
export function checkAlgorithm(key: KeyObject, alg: string, label: string): JwsAlgorithm {
  const spec = Object.hasOwn(algorithmSpecs, alg) ? algorithmSpecs[alg as JwsAlgorithm] : undefined
  if (spec === undefined) {
    throw new TypeError(`${label}: alg ${JSON.stringify(alg)} is not supported`)
  }
  const keyType = key.type === 'secret' ? 'secret' : (key.asymmetricKeyType ?? 'unknown')
  if (key.type === 'public') {
    throw new TypeError(`${label}: this is a public key; a private key is needed`)
  }
  if (!spec.keyTypes.includes(keyType)) {
    const kind = keyType === 'secret' ? 'a secret key' : `a ${keyType.toUpperCase()} key`
    throw new TypeError(`${label}: alg ${alg} does not fit ${kind}`)
  }
  const details = key.asymmetricKeyDetails ?? {}
  if (keyType === 'rsa' || keyType === 'rsa-pss') {
    // RFC 7518 §3.3 and §3.5: "A key of size 2048 bits or larger MUST be used".
    if ((details.modulusLength ?? 0) < 2048) {
      throw new TypeError(`${label}: RSA keys must be at least 2048 bits (RFC 7518 §3.3)`)
    }
  }
  if (keyType === 'rsa-pss' && spec.hash !== null) {
    const { hashAlgorithm, mgf1HashAlgorithm, saltLength } = details
    if (
      (hashAlgorithm !== undefined && hashAlgorithm !== spec.hash) ||
      (mgf1HashAlgorithm !== undefined && mgf1HashAlgorithm !== spec.hash) ||
      (saltLength !== undefined && saltLength > digestBytes[spec.hash])
    ) {
      throw new TypeError(`${label}: alg ${alg} does not fit this RSA-PSS key's parameters`)
    }
  }
  if (spec.curve !== undefined && details.namedCurve !== spec.curve) {
    throw new TypeError(`${label}: alg ${alg} does not fit a key on curve ${details.namedCurve}`)
  }
  if (keyType === 'secret' && spec.hash !== null) {
    // RFC 7518 §3.2: "A key of the same size as the hash output … or larger MUST be used".
    const bytes = digestBytes[spec.hash]
    if ((key.symmetricKeySize ?? 0) < bytes) {
      throw new TypeError(
        `${label}: ${alg} needs a secret of at least ${bytes} bytes (RFC 7518 §3.2); this one is shorter`,
      )
    }
  }
  return alg as JwsAlgorithm
}

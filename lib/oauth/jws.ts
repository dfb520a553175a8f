/*
 * Compact JWS signing (RFC 7515 §7.1) with node:crypto only: a key is imported once, the
 * protected header segment is encoded once per (key, header), and every signature is one
 * synchronous `crypto.sign` (or HMAC) — no jose, no promise. Used by the JWT client
 * assertions (RFC 7523) and meant for DPoP proofs (RFC 9449), which sign on every request.
 */
import {
  constants,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  type JsonWebKey,
  KeyObject,
  randomFillSync,
  sign,
} from 'node:crypto'

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

/** Signs compact JWSs under one key and one protected header. */
export interface JwsSigner {
  readonly alg: JwsAlgorithm
  /**
   * The compact JWS `header.payload.signature` of an already base64url-encoded payload
   * segment (see `encodeSegment`). Synchronous.
   */
  sign(payloadSegment: string): string
}

interface AlgorithmSpec {
  /** Key types (`KeyObject.asymmetricKeyType`, or 'secret') the algorithm signs with. */
  readonly keyTypes: readonly string[]
  /** The digest; null for EdDSA, which hashes internally. */
  readonly hash: 'sha256' | 'sha384' | 'sha512' | null
  /** ECDSA: the curve (OpenSSL name) the key must be on. */
  readonly curve?: string
}

const rsa = ['rsa']
const pss = ['rsa', 'rsa-pss']
const specs: Readonly<Record<JwsAlgorithm, AlgorithmSpec>> = {
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

function codeOf(error: unknown): string {
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
  const spec = Object.hasOwn(specs, alg) ? specs[alg as JwsAlgorithm] : undefined
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

/** Random bytes drawn ahead, 16 at a time: one CSPRNG call per 256 ids (as randomUUID does). */
const pool = Buffer.alloc(4096)
let poolOffset = pool.length

/**
 * 128 random bits, base64url (22 characters): a JWT ID (`jti`, RFC 7519 §4.1.7) no one can
 * guess or repeat. From `randomFillSync`, drawn ahead in 4 KiB: `randomBytes(16)` per call
 * costs several times more.
 */
export function randomId(): string {
  if (poolOffset === pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const id = pool.toString('base64url', poolOffset, poolOffset + 16)
  poolOffset += 16
  return id
}

/** base64url (RFC 7515 §2) of a value's JSON. */
export function encodeSegment(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url')
}

/**
 * Scratch space for `encodeAsciiSegment`: reused, because a Buffer allocated per call (and
 * collected later) costs more than the encoding itself. Only ever used synchronously.
 */
let asciiScratch = Buffer.allocUnsafeSlow(1024)

/**
 * base64url (RFC 7515 §2) of a text the caller guarantees is ASCII (e.g. JSON whose every
 * other character is escaped), without allocating a Buffer: for DPoP proofs, one per request.
 */
export function encodeAsciiSegment(text: string): string {
  if (text.length > asciiScratch.length) asciiScratch = Buffer.allocUnsafeSlow(2 * text.length)
  return asciiScratch.toString('base64url', 0, asciiScratch.write(text, 0, 'latin1'))
}

/**
 * A signer for one key and one protected header: `alg` is set (given, or inferred from
 * the key) and checked against the key, and comes first in the header; the header's
 * segment is encoded here, once. `key` is an imported private or secret KeyObject.
 */
export function jwsSigner(
  key: KeyObject,
  options: { alg?: string | undefined; header?: Readonly<Record<string, unknown>>; label: string },
): JwsSigner {
  const { label } = options
  const alg = checkAlgorithm(key, options.alg ?? inferAlgorithm(key, label), label)
  const header = Object.assign({ alg }, options.header, { alg })
  const prefix = `${encodeSegment(header)}.`
  const signature = signatureFunction(key, alg)
  // The signing input (RFC 7515 §5.1) is written into one Buffer per signer that holds the
  // header segment once; a fresh Buffer per signature (and its garbage) cost ~2 µs, 6 % of
  // an ES256 signature, on the DPoP hot path. The view is kept while the length repeats
  // (same URL and token: the usual case). Safe to reuse: signing is synchronous.
  let scratch = Buffer.allocUnsafeSlow(Math.max(1024, 2 * prefix.length))
  scratch.write(prefix, 0, 'latin1')
  let input = scratch.subarray(0, 0)
  return {
    alg,
    sign(payloadSegment) {
      const length = prefix.length + payloadSegment.length
      if (length > scratch.length) {
        scratch = Buffer.allocUnsafeSlow(2 * length)
        scratch.write(prefix, 0, 'latin1')
        input = scratch.subarray(0, 0)
      }
      // Segments are base64url, so ASCII: one byte per character.
      scratch.write(payloadSegment, prefix.length, 'latin1')
      if (input.length !== length) input = scratch.subarray(0, length)
      return `${prefix}${payloadSegment}.${signature(input)}`
    },
  }
}

/** The base64url signature of the signing input (RFC 7515 §5.1), per RFC 7518 §3. */
function signatureFunction(key: KeyObject, alg: JwsAlgorithm): (input: Buffer) => string {
  const { hash } = specs[alg]
  switch (alg) {
    case 'HS256':
    case 'HS384':
    case 'HS512':
      return (input) =>
        createHmac(hash as string, key)
          .update(input)
          .digest('base64url')
    case 'RS256':
    case 'RS384':
    case 'RS512':
      return (input) => sign(hash, input, key).toString('base64url')
    case 'PS256':
    case 'PS384':
    case 'PS512': {
      // RFC 7518 §3.5: MGF1 with the same digest, salt as long as the digest.
      const options = {
        key,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
      }
      return (input) => sign(hash, input, options).toString('base64url')
    }
    case 'ES256':
    case 'ES384':
    case 'ES512': {
      // RFC 7518 §3.4: R || S, each as long as the curve's order — not DER.
      const options = { key, dsaEncoding: 'ieee-p1363' as const }
      return (input) => sign(hash, input, options).toString('base64url')
    }
    case 'EdDSA':
      // RFC 8037 §3.1: Ed25519 hashes internally.
      return (input) => sign(null, input, key).toString('base64url')
  }
}

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

/*
 * Compact JWS signing (RFC 7515 §7.1) with node:crypto only: the protected header segment
 * is encoded once per (key, header), and every signature is one synchronous `crypto.sign`
 * (or HMAC) — no jose, no promise. Keys are imported and checked in jws-key.ts. Used by
 * the JWT client assertions (RFC 7523) and by DPoP proofs (RFC 9449), which sign on every
 * request.
 */
import { constants, createHmac, type KeyObject, randomFillSync, sign } from 'node:crypto'
import { algorithmSpecs, checkAlgorithm, inferAlgorithm, type JwsAlgorithm } from './jws-key.js'

/** Signs compact JWSs under one key and one protected header. */
export interface JwsSigner {
  readonly alg: JwsAlgorithm
  /**
   * The compact JWS `header.payload.signature` of an already base64url-encoded payload
   * segment (see `encodeSegment`). Synchronous.
   */
  sign(payloadSegment: string): string
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
  const { hash } = algorithmSpecs[alg]
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

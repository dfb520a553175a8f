import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
} from 'node:crypto'
import type { Token } from '../types.js'

/**
 * How a token is written to and read from one Redis string value:
 *
 *     <fingerprint>.p1.<token JSON>                          without encryptionKey
 *     <fingerprint>.e1.<base64url(iv ‖ ciphertext ‖ tag)>    with encryptionKey (AES-256-GCM)
 *
 * The fingerprint leads so that delete-if-equal can compare it in a Lua script
 * with a prefix match, without decrypting: a ciphertext differs on every write
 * (fresh IV), so comparing values would never match. It is base64url, which has
 * no '.'.
 */
export interface TokenCodec {
  /** What delete-if-equal compares: SHA-256 of the token, or an HMAC when encrypting. */
  fingerprint(accessToken: string): string
  encode(token: Token, redisKey: string): string
  /** The token, or undefined for anything that does not decode: another key, another format, garbage. */
  decode(value: string, redisKey: string): Token | undefined
}

const ivBytes = 12 // NIST SP 800-38D §8.2: 96-bit IVs; random IVs are fine far below 2^32 writes per key
const tagBytes = 16

/**
 * `encryptionKey` as 32 bytes: a Uint8Array of 32 bytes, or a base64 (or base64url)
 * string of 32 bytes. The message never shows the key.
 */
export function parseEncryptionKey(key: Uint8Array | string): Buffer {
  let bytes: Buffer
  if (typeof key === 'string') {
    const text = key.trim()
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) {
      throw new TypeError('encryptionKey must be 32 bytes, or a base64 string of 32 bytes')
    }
    bytes = Buffer.from(text, 'base64')
  } else if (key instanceof Uint8Array) {
    bytes = Buffer.from(key)
  } else {
    throw new TypeError(
      'encryptionKey must be a Uint8Array of 32 bytes or a base64 string of 32 bytes',
    )
  }
  if (bytes.length !== 32) {
    throw new RangeError(
      `encryptionKey must be 32 bytes for AES-256-GCM (or a base64 string of 32 bytes); it has ${bytes.length}`,
    )
  }
  return bytes
}

/** Stores the token as JSON, readable by anyone who can read Redis. */
export function plainCodec(): TokenCodec {
  const fingerprint = (accessToken: string): string =>
    createHash('sha256').update(accessToken).digest('base64url')
  return {
    fingerprint,
    encode: (token) => `${fingerprint(token.accessToken)}.p1.${JSON.stringify(token)}`,
    decode(value) {
      const parts = split(value)
      if (parts === undefined || parts.format !== 'p1') return undefined
      return checked(parseJson(parts.data), parts.fingerprint, fingerprint)
    },
  }
}

/**
 * AES-256-GCM (NIST SP 800-38D) with a random IV per write. Two keys are derived
 * from `encryptionKey` with HKDF-SHA256 (RFC 5869), one for the cipher and one for
 * the fingerprint's HMAC, so the same key material never serves two algorithms, and
 * without the key the fingerprint says nothing about the token. The Redis key name
 * and the fingerprint are the additional authenticated data: a value copied under
 * another key, or given another fingerprint, does not decrypt.
 */
export function encryptedCodec(encryptionKey: Uint8Array | string): TokenCodec {
  const material = parseEncryptionKey(encryptionKey)
  const derive = (info: string): Buffer =>
    Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), info, 32))
  const cipherKey = derive('undici-access-token redisStore aes-256-gcm v1')
  const fingerprintKey = derive('undici-access-token redisStore fingerprint v1')
  material.fill(0)
  const fingerprint = (accessToken: string): string =>
    createHmac('sha256', fingerprintKey).update(accessToken).digest('base64url')
  const aad = (redisKey: string, print: string): Buffer =>
    Buffer.from(`undici-access-token e1\n${redisKey}\n${print}`)
  return {
    fingerprint,
    encode(token, redisKey) {
      const print = fingerprint(token.accessToken)
      const iv = randomBytes(ivBytes)
      const cipher = createCipheriv('aes-256-gcm', cipherKey, iv, { authTagLength: tagBytes })
      cipher.setAAD(aad(redisKey, print))
      const sealed = Buffer.concat([
        iv,
        cipher.update(JSON.stringify(token), 'utf8'),
        cipher.final(),
        cipher.getAuthTag(),
      ])
      return `${print}.e1.${sealed.toString('base64url')}`
    },
    decode(value, redisKey) {
      const parts = split(value)
      if (parts === undefined || parts.format !== 'e1') return undefined
      const sealed = Buffer.from(parts.data, 'base64url')
      if (sealed.length < ivBytes + tagBytes + 2) return undefined
      let json: string
      try {
        const decipher = createDecipheriv('aes-256-gcm', cipherKey, sealed.subarray(0, ivBytes), {
          authTagLength: tagBytes,
        })
        decipher.setAAD(aad(redisKey, parts.fingerprint))
        decipher.setAuthTag(sealed.subarray(sealed.length - tagBytes))
        json = Buffer.concat([
          decipher.update(sealed.subarray(ivBytes, sealed.length - tagBytes)),
          decipher.final(), // throws when the tag does not verify: another key, or tampered
        ]).toString('utf8')
      } catch {
        return undefined
      }
      return checked(parseJson(json), parts.fingerprint, fingerprint)
    },
  }
}

function split(value: string): { fingerprint: string; format: string; data: string } | undefined {
  const first = value.indexOf('.')
  const second = first < 0 ? -1 : value.indexOf('.', first + 1)
  if (second < 0) return undefined
  return {
    fingerprint: value.slice(0, first),
    format: value.slice(first + 1, second),
    data: value.slice(second + 1),
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** A token-shaped value whose fingerprint is the one stored beside it, else undefined. */
function checked(
  value: unknown,
  storedFingerprint: string,
  fingerprint: (accessToken: string) => string,
): Token | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const token = value as Partial<Token>
  if (
    typeof token.accessToken !== 'string' ||
    token.accessToken.length === 0 ||
    typeof token.tokenType !== 'string' ||
    typeof token.expiresAt !== 'number' ||
    !Number.isFinite(token.expiresAt) ||
    typeof token.obtainedAt !== 'number' ||
    !Number.isFinite(token.obtainedAt)
  ) {
    return undefined
  }
  // Delete-if-equal trusts the stored fingerprint; a value whose fingerprint is not
  // its token's could never be evicted by a 401 for that token, so it is no token.
  if (fingerprint(token.accessToken) !== storedFingerprint) return undefined
  return token as Token
}

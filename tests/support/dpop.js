// @ts-check
// DPoP proofs (RFC 9449) checked the way a careful server does, with node:crypto only (no
// jose): compat cells load this on Node 20–26, and tests/dpop-proof.test.ts reads proofs
// byte for byte with it.
//
// - decodeProof(): a proof's header and payload, as the exact JSON text and parsed;
// - verifyProofSignature(): that, once the signature verifies under the embedded public JWK;
// - ProofChecker: one server's checks — signature, typ, alg, a public-only jwk, htm, htu,
//   iat within ±60 s, a jti never seen before, ath, and the server's own nonce (§4.3, §8, §9).
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto'

/**
 * @typedef {object} ProofClaims  what a proof's payload holds (RFC 9449 §4.2)
 * @property {string} jti
 * @property {string} htm
 * @property {string} htu
 * @property {number} iat
 * @property {string} [ath]
 * @property {string} [nonce]
 *
 * @typedef {object} DecodedProof
 * @property {Record<string, unknown>} header
 * @property {Record<string, unknown>} claims
 * @property {string} headerJson  the header segment, decoded: the JSON text as signed
 * @property {string} payloadJson  the payload segment, decoded
 *
 * @typedef {{ ok: true, thumbprint: string, claims: ProofClaims, jwk: import('node:crypto').JsonWebKey, alg: string }
 *   | { ok: false, error: 'invalid_dpop_proof' | 'use_dpop_nonce', reason: string }} ProofOutcome
 *
 * @typedef {object} ProofExpectation  what a request's proof must say
 * @property {string} htm
 * @property {string} htu
 * @property {string} [accessToken]  the token sent with it: `ath` must be its hash; without
 *   one, no `ath` is allowed
 */

/** Public JWK members (RFC 7638 §3.2) of the key types DPoP takes here. */
const publicMembers = new Set(['kty', 'crv', 'x', 'y'])

/**
 * base64url(SHA-256(token)): a proof's `ath` (RFC 9449 §4.2).
 * @param {string} token
 */
export function ath(token) {
  return createHash('sha256').update(token).digest('base64url')
}

/**
 * A URL without query and fragment: what `htu` covers (RFC 9449 §4.2).
 * @param {string} url
 */
export function htuOf(url) {
  const end = url.search(/[?#]/)
  return end < 0 ? url : url.slice(0, end)
}

/**
 * The RFC 7638 SHA-256 thumbprint of an EC or OKP public JWK (required members, sorted).
 * @param {import('node:crypto').JsonWebKey} jwk
 */
export function jwkThumbprint(jwk) {
  const members =
    jwk.kty === 'EC'
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url')
}

/**
 * A compact JWS's two first segments, decoded and parsed; nothing verified. Throws on a
 * proof that is not three base64url segments of JSON objects.
 * @param {string} proof
 * @returns {DecodedProof}
 */
export function decodeProof(proof) {
  const parts = proof.split('.')
  if (parts.length !== 3 || parts.some((part) => !/^[A-Za-z0-9_-]+$/.test(part))) {
    throw new Error('not a compact JWS of three base64url segments')
  }
  const headerJson = Buffer.from(/** @type {string} */ (parts[0]), 'base64url').toString('utf8')
  const payloadJson = Buffer.from(/** @type {string} */ (parts[1]), 'base64url').toString('utf8')
  const header = JSON.parse(headerJson)
  const claims = JSON.parse(payloadJson)
  if (
    typeof header !== 'object' ||
    header === null ||
    typeof claims !== 'object' ||
    claims === null
  ) {
    throw new Error('the header and the payload must be JSON objects')
  }
  return { header, claims, headerJson, payloadJson }
}

/**
 * A proof decoded, once its signature verifies under the public key in its header (RFC 9449
 * §4.3 steps 4–7): typ dpop+jwt, alg ES256 (R || S, RFC 7518 §3.4) or EdDSA, a jwk with
 * public members only. Throws with the reason otherwise.
 * @param {string} proof
 * @returns {DecodedProof & { jwk: import('node:crypto').JsonWebKey, alg: string }}
 */
export function verifyProofSignature(proof) {
  const decoded = decodeProof(proof)
  const { header } = decoded
  if (header.typ !== 'dpop+jwt') throw new Error(`typ ${String(header.typ)}`)
  const alg = header.alg
  if (alg !== 'ES256' && alg !== 'EdDSA') throw new Error(`alg ${String(alg)}`)
  const jwk = /** @type {import('node:crypto').JsonWebKey} */ (header.jwk)
  if (typeof jwk !== 'object' || jwk === null) throw new Error('no jwk')
  for (const member of Object.keys(jwk)) {
    if (!publicMembers.has(member)) throw new Error(`jwk has the member "${member}"`)
  }
  const expected = alg === 'ES256' ? ['EC', 'P-256'] : ['OKP', 'Ed25519']
  if (jwk.kty !== expected[0] || jwk.crv !== expected[1])
    throw new Error(`alg ${alg} with this jwk`)
  const key = createPublicKey({ key: jwk, format: 'jwk' })
  const cut = proof.lastIndexOf('.')
  const input = Buffer.from(proof.slice(0, cut), 'ascii')
  const signature = Buffer.from(proof.slice(cut + 1), 'base64url')
  const ok =
    alg === 'ES256'
      ? verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature)
      : verify(null, input, key, signature)
  if (!ok) throw new Error('bad signature')
  return { ...decoded, jwk, alg }
}

/** One server's proof checks: its jti memory and its own nonce. */
export class ProofChecker {
  /** Every jti accepted so far (a second sight is a replay). @type {Set<string>} */
  jtis = new Set()
  /** Why proofs were refused, in order. @type {string[]} */
  refusals = []
  /** Proofs that passed. */
  verified = 0
  /** @type {string | undefined} */
  #nonce
  #rotations = 0
  #label
  #requireNonce

  /** @param {{ label: string, requireNonce?: boolean }} options */
  constructor(options) {
    this.#label = options.label
    this.#requireNonce = options.requireNonce ?? true
    if (this.#requireNonce) this.rotateNonce()
  }

  /** The nonce proofs must carry now (undefined: none required). */
  get nonce() {
    return this.#nonce
  }

  /** A new nonce: proofs with the old one get `use_dpop_nonce` from now on. */
  rotateNonce() {
    this.#rotations++
    // NQCHAR only (RFC 9449 §8.1).
    this.#nonce = `${this.#label}-n${this.#rotations}.${randomBytes(9).toString('base64url')}`
    return this.#nonce
  }

  /**
   * Checks a request's DPoP header values (all of them: two are refused).
   * @param {readonly string[]} proofs
   * @param {ProofExpectation} expected
   * @returns {ProofOutcome}
   */
  check(proofs, expected) {
    const outcome = this.#check(proofs, expected)
    if (outcome.ok) this.verified++
    else this.refusals.push(`${outcome.error}: ${outcome.reason}`)
    return outcome
  }

  /**
   * @param {readonly string[]} proofs
   * @param {ProofExpectation} expected
   * @returns {ProofOutcome}
   */
  #check(proofs, expected) {
    /** @param {string} reason @returns {ProofOutcome} */
    const refuse = (reason) => ({ ok: false, error: 'invalid_dpop_proof', reason })
    if (proofs.length !== 1) return refuse(`${proofs.length} DPoP headers`)
    /** @type {ReturnType<typeof verifyProofSignature>} */
    let verified
    try {
      verified = verifyProofSignature(/** @type {string} */ (proofs[0]))
    } catch (error) {
      return refuse(`signature or header: ${/** @type {Error} */ (error).message}`)
    }
    const claims = /** @type {ProofClaims} */ (/** @type {unknown} */ (verified.claims))
    if (typeof claims.jti !== 'string' || claims.jti.length < 16) return refuse('jti')
    if (this.jtis.has(claims.jti)) return refuse('jti replayed')
    this.jtis.add(claims.jti)
    if (claims.htm !== expected.htm) return refuse(`htm ${claims.htm} ≠ ${expected.htm}`)
    if (claims.htu !== expected.htu) return refuse(`htu ${claims.htu} ≠ ${expected.htu}`)
    if (!Number.isInteger(claims.iat)) return refuse('iat')
    if (Math.abs(Date.now() / 1000 - claims.iat) > 60) return refuse('iat out of window')
    if (expected.accessToken === undefined) {
      if (claims.ath !== undefined) return refuse('ath without a token')
    } else if (claims.ath !== ath(expected.accessToken)) {
      return refuse('ath mismatch')
    }
    if (this.#requireNonce && claims.nonce !== this.#nonce) {
      return {
        ok: false,
        error: 'use_dpop_nonce',
        reason: claims.nonce === undefined ? 'no nonce' : 'stale nonce',
      }
    }
    return {
      ok: true,
      thumbprint: jwkThumbprint(verified.jwk),
      claims,
      jwk: verified.jwk,
      alg: verified.alg,
    }
  }
}

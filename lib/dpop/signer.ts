import {
  createHash,
  createPublicKey,
  type JsonWebKey,
  type KeyObject,
  randomUUID,
  sign,
  verify,
} from 'node:crypto'
import { BoundedMap } from '../cache/bounded-map.js'
import {
  checkAlgorithm,
  encodeSegment,
  importPrivateKey,
  inferAlgorithm,
  type JwsSigner,
  jwkThumbprint,
  jwsSigner,
  publicJwk,
} from '../oauth/jws.js'

/** Options of DPoP (RFC 9449): on `TokenCache`, or on `accessToken()` for the cache it builds. */
export interface DPoPOptions {
  /** The private key proofs are signed with: EC P-256 (ES256) or Ed25519 (EdDSA); a string is PEM. */
  key: KeyObject | JsonWebKey | string
  /** Default from the key. */
  alg?: 'ES256' | 'EdDSA'
  /**
   * Default true: a token the server did not bind to the key (`token_type` not DPoP) is
   * refused, nothing sent. `false`: such an answer is used as a Bearer token, without proofs.
   */
  required?: boolean
}

/** Signs DPoP proofs with one key; handed to token sources as `context.dpop`. */
export interface DPoPSigner {
  /** The key's RFC 7638 JWK SHA-256 thumbprint (`dpop_jkt`, `cnf.jkt`). */
  readonly thumbprint: string
  /**
   * A fresh proof (RFC 9449 §4.2) for a request: `htm` the method, `htu` the URL (its query
   * and fragment are dropped here), `nonce` the server's last `DPoP-Nonce`, and with
   * `accessToken` its hash (`ath`). Synchronous.
   */
  proof(htm: string, htu: string, options?: { nonce?: string; accessToken?: string }): string
  /** The nonce `origin` last sent in a `DPoP-Nonce` header, if any (RFC 9449 §8, §9). */
  nonce(origin: string): string | undefined
  /** Remembers a `DPoP-Nonce` that `origin` sent. */
  rememberNonce(origin: string, nonce: string): void
}

/** Origins whose last nonce is remembered, at most. */
const maxNonceOrigins = 1_000

/**
 * A DPoP key, imported once: the proof header segment (`typ`, `alg`, the public `jwk`) is
 * encoded once, `ath` once per token, and each proof costs one `crypto.sign` plus a small
 * JSON payload. Nonces (RFC 9449 §8, §9) are remembered per origin, bounded. The private
 * key never leaves the KeyObject: only the public JWK goes into a proof.
 */
export class DPoPKey implements DPoPSigner {
  readonly thumbprint: string
  /** Default true: a non-DPoP token is refused. */
  readonly required: boolean
  readonly #signer: JwsSigner
  readonly #nonces = new BoundedMap<string>(maxNonceOrigins)
  #lastToken = ''
  #lastAth = ''

  constructor(options: DPoPOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('dpop needs options: { key, alg?, required? }')
    }
    const key = importPrivateKey(options.key, 'dpop.key')
    const alg = checkAlgorithm(key, options.alg ?? inferAlgorithm(key, 'dpop.key'), 'dpop.key')
    if (alg !== 'ES256' && alg !== 'EdDSA') {
      throw new TypeError(
        `dpop.key: DPoP proofs here are ES256 (EC P-256) or EdDSA (Ed25519), not ${alg}`,
      )
    }
    // A JWK whose d does not belong to its x/y imports fine and signs proofs no server accepts.
    const probe = Buffer.from('undici-access-token dpop key check')
    if (!verify(null, probe, createPublicKey(key), sign(null, probe, key))) {
      throw new TypeError('dpop.key: the private key does not belong to its public key')
    }
    const jwk = publicJwk(key)
    this.thumbprint = jwkThumbprint(jwk)
    this.required = options.required ?? true
    // RFC 9449 §4.2: typ dpop+jwt, alg, and the public key as jwk.
    this.#signer = jwsSigner(key, { alg, header: { typ: 'dpop+jwt', jwk }, label: 'dpop.key' })
  }

  proof(htm: string, htu: string, options?: { nonce?: string; accessToken?: string }): string {
    // jti: a random UUID (122 random bits), unique per proof as RFC 9449 §4.2 asks.
    const claims: Record<string, unknown> = {
      jti: randomUUID(),
      htm,
      htu: withoutQuery(htu),
      iat: Math.floor(Date.now() / 1000),
    }
    if (options?.accessToken !== undefined) claims.ath = this.#ath(options.accessToken)
    if (options?.nonce !== undefined) claims.nonce = options.nonce
    return this.#signer.sign(encodeSegment(claims))
  }

  /** The nonce `origin` last sent (a `DPoP-Nonce` header), if any. */
  nonce(origin: string): string | undefined {
    return this.#nonces.peek(origin)
  }

  /** Remembers a `DPoP-Nonce` an origin sent (RFC 9449 §8.2: the newest one counts). */
  rememberNonce(origin: string, nonce: string): void {
    if (this.#nonces.peek(origin) !== nonce) this.#nonces.set(origin, nonce)
  }

  /** base64url(SHA-256(token)) (RFC 9449 §4.2), once per token. */
  #ath(accessToken: string): string {
    if (accessToken !== this.#lastToken) {
      this.#lastAth = createHash('sha256').update(accessToken).digest('base64url')
      this.#lastToken = accessToken
    }
    return this.#lastAth
  }
}

/** RFC 9449 §4.2: htu is the URI without query and fragment. */
function withoutQuery(url: string): string {
  const end = url.search(/[?#]/)
  return end < 0 ? url : url.slice(0, end)
}

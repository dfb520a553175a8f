import {
  createHash,
  createPublicKey,
  type JsonWebKey,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto'
import { BoundedMap } from '../cache/bounded-map.js'
import { jwkThumbprint, publicJwk } from '../oauth/jwk.js'
import { encodeAsciiSegment, type JwsSigner, jwsSigner, randomId } from '../oauth/jws.js'
import { checkAlgorithm, importPrivateKey, inferAlgorithm } from '../oauth/jws-key.js'

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
    // The payload (RFC 9449 §4.2) is written as JSON text: no claims object and no
    // JSON.stringify; only htm, htu and nonce come from outside, and `jsonString` escapes
    // them (keeping the text ASCII). iat: whole seconds (RFC 7519 §2 NumericDate).
    // jti: 128 bits from the CSPRNG, base64url (22 characters), new for every proof. §4.2
    // asks for "a negligible probability that the same value will be assigned to any other
    // DPoP proof" and names "at least 96 bits of pseudorandom data" as a way to get it.
    // randomUUID() would do too, but cost ~1 µs per proof here (3-4 % of a signature)
    // against ~0.2 µs for `randomId`, which draws from a pool. A random prefix + counter is
    // cheaper still but would tell every server how many proofs the key made for others.
    let json = `{"jti":"${randomId()}","htm":${jsonString(htm)},"htu":${jsonString(withoutQuery(htu))},"iat":${Math.floor(Date.now() / 1000)}`
    if (options !== undefined) {
      if (options.accessToken !== undefined) json += `,"ath":"${this.#ath(options.accessToken)}"`
      if (options.nonce !== undefined) json += `,"nonce":${jsonString(options.nonce)}`
    }
    return this.#signer.sign(encodeAsciiSegment(`${json}}`))
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

/**
 * RFC 9449 §4.2: htu is "the HTTP target URI … without query and fragment parts". The URL is
 * the caller's serialisation (origin + path, or a URL's href): cut at the first `?` or `#`,
 * whichever comes first (a `?` inside a fragment is not a query).
 */
export function withoutQuery(url: string): string {
  const query = url.indexOf('?')
  const fragment = url.indexOf('#')
  const end = query < 0 ? fragment : fragment < 0 ? query : Math.min(query, fragment)
  return end < 0 ? url : url.slice(0, end)
}

/**
 * A string as a JSON string literal (RFC 8259 §7) of ASCII only, so that the payload is
 * encoded one byte per character. The usual value needs no escaping and is only scanned: a
 * method is a token (RFC 9110 §9.1), a URL's serialisation is printable ASCII, and a nonce is
 * NQCHAR (RFC 9449 §8.1: printable ASCII without `"` and `\`). Anything else — a quote, a
 * backslash, a control character, DEL, non-ASCII, a lone surrogate — is escaped: JSON.stringify
 * for the escapes JSON requires (it writes lone surrogates as \uXXXX, ES2019), then \uXXXX for
 * each remaining code unit above 0x7e. The claim parses back to exactly the string given.
 */
export function jsonString(value: string): string {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) {
      return JSON.stringify(value).replace(notPrintableAscii, escapeCodeUnit)
    }
  }
  return `"${value}"`
}

/** What JSON.stringify leaves unescaped but is not printable ASCII (code units, no `u` flag). */
const notPrintableAscii = /[\u007f-\uffff]/g

function escapeCodeUnit(unit: string): string {
  return `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`
}

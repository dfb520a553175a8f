/*
 * Client authentication with a JWT assertion (RFC 7521 §4.2, RFC 7523 §2.2 and §3, OIDC
 * Core §9): the form carries `client_assertion_type`, `client_assertion` and `client_id`.
 * The ClientAuth factories: `clientSecretJwt` and `privateKeyJwt` sign an assertion here
 * (its claims in jwt-assertion.ts); `clientAssertion` and `federatedTokenFile` take one
 * made elsewhere. Either way a fresh one goes with every call — every attempt, retries
 * included — since servers refuse a `jti` they have seen.
 */

import { createHash, type JsonWebKey, type KeyObject, X509Certificate } from 'node:crypto'
import { statSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { TokenRequestError } from '../errors.js'
import { type ClientAuth, withMethod } from './client-auth.js'
import { jwsSigner } from './jws.js'
import { type HmacAlgorithm, importPrivateKey, importSecret } from './jws-key.js'
import { type AssertionOptions, jwtAssertion, setAssertion } from './jwt-assertion.js'

export type { AssertionOptions } from './jwt-assertion.js'

/** Options of `clientSecretJwt()`. */
export interface ClientSecretJwtOptions extends AssertionOptions {
  /** Default HS256. The secret must have at least as many bytes as the hash (RFC 7518 §3.2). */
  alg?: HmacAlgorithm
}

/** Options of `privateKeyJwt()`. */
export interface PrivateKeyJwtOptions extends AssertionOptions {
  /** The private key: a KeyObject, a JWK with its private members, or a PEM string. */
  key: KeyObject | JsonWebKey | string
  /**
   * Default from the key: RSA → RS256, RSA-PSS → PS256, EC P-256 → ES256, P-384 → ES384,
   * Ed25519 → EdDSA. Entra ID's current documentation asks for PS256 with `x5t#S256`.
   */
  alg?: 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA'
  /** The `kid` header: the key's id in the client's registered JWK Set. */
  kid?: string
  /**
   * The key's X.509 certificate (PEM; a chain, leaf first) as registered with the server
   * (Entra ID certificate credentials): adds its thumbprint header(s), see `x5t`.
   */
  certificate?: string | string[]
  /**
   * Which thumbprint header(s) of `certificate` to send: `'sha256'` (default) `x5t#S256`
   * (RFC 7515 §4.1.8), `'sha1'` `x5t` only (§4.1.7; Entra ID's older documentation), `'both'`.
   */
  x5t?: 'sha256' | 'sha1' | 'both'
}

/** What `clientAssertion()`'s function gets: the token request it makes an assertion for. */
export interface ClientAssertionRequest {
  readonly tokenUrl: URL
  readonly issuer?: string | undefined
  readonly clientId: string
  readonly signal: AbortSignal
}

/**
 * `client_secret_jwt` (OIDC Core §9): an assertion HMAC-signed with the client secret
 * (HS256 by default, HS384, HS512).
 */
export function clientSecretJwt(secret: string, options: ClientSecretJwtOptions = {}): ClientAuth {
  const label = 'clientSecretJwt'
  const key = importSecret(secret, label)
  const signer = jwsSigner(key, { alg: options.alg ?? 'HS256', header: { typ: 'JWT' }, label })
  return jwtAssertion('client_secret_jwt', signer, options, label)
}

/**
 * `private_key_jwt` (OIDC Core §9, RFC 7523 §2.2): an assertion signed with the client's
 * private key. The key is imported and checked here, once; with `certificate`, the
 * certificate's public key must be the key's.
 */
export function privateKeyJwt(options: PrivateKeyJwtOptions): ClientAuth {
  const label = 'privateKeyJwt'
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${label} needs options with a key`)
  }
  const key = importPrivateKey(options.key, `${label} key`)
  // RFC 7515 §4.1.9 / RFC 7519 §5.1: "JWT" marks a JWT; Entra ID's examples send it.
  const header: Record<string, string> = { typ: 'JWT' }
  if (options.kid !== undefined) {
    if (typeof options.kid !== 'string' || options.kid.length === 0) {
      throw new TypeError(`${label}: kid must be a non-empty string`)
    }
    header.kid = options.kid
  }
  if (options.certificate !== undefined) {
    Object.assign(header, thumbprintHeaders(options.certificate, key, options.x5t, label))
  } else if (options.x5t !== undefined) {
    throw new TypeError(`${label}: x5t needs a certificate`)
  }
  const signer = jwsSigner(key, { alg: options.alg, header, label })
  return jwtAssertion('private_key_jwt', signer, options, label)
}

/**
 * A client assertion made elsewhere (a signing service, a KMS, a workload identity), asked
 * for on every call — every attempt, retries included. RFC 7523 does not say how such a
 * client is registered; providers register it as `private_key_jwt` (Entra ID's federated
 * credentials and Azure's ClientAssertionCredential authenticate with `client_assertion`
 * and list only that JWT method), so that is the method this one names.
 */
export function clientAssertion(
  get: (request: ClientAssertionRequest) => string | Promise<string>,
): ClientAuth {
  if (typeof get !== 'function') {
    throw new TypeError('clientAssertion needs a function that returns the assertion')
  }
  return withMethod('private_key_jwt', async (request) => {
    const { issuer, clientId, signal } = request
    let assertion: unknown
    try {
      // A copy: the token request's URL is not the function's to change.
      assertion = await get({ tokenUrl: new URL(request.tokenUrl), issuer, clientId, signal })
    } catch (error) {
      if (signal.aborted) throw signal.reason
      throw new TokenRequestError(
        'clientAssertion: the assertion function failed; nothing was sent',
        {
          cause: error,
        },
      )
    }
    if (typeof assertion !== 'string' || assertion.length === 0) {
      throw new TokenRequestError(
        'clientAssertion: the assertion function must return a non-empty string (a JWT); nothing was sent',
      )
    }
    setAssertion(request, assertion)
  })
}

/**
 * A client assertion read from a file on every call: a Kubernetes projected service-account
 * token, which the kubelet rewrites before it expires (reading it once is the recurring bug
 * behind AADSTS700024). Default path: `AZURE_FEDERATED_TOKEN_FILE`, as Azure workload
 * identity sets it. Surrounding whitespace is trimmed; a missing or empty file is an error
 * and nothing is sent. The method is `private_key_jwt`, as for `clientAssertion`.
 */
export function federatedTokenFile(path?: string): ClientAuth {
  const label = 'federatedTokenFile'
  const file = path ?? process.env.AZURE_FEDERATED_TOKEN_FILE
  if (typeof file !== 'string' || file.length === 0) {
    throw new TypeError(
      path === undefined
        ? `${label} needs a path, or AZURE_FEDERATED_TOKEN_FILE set (Azure workload identity sets it)`
        : `${label}: the path must be a non-empty string`,
    )
  }
  let isDirectory: boolean
  try {
    isDirectory = statSync(file).isDirectory()
  } catch (error) {
    throw new TypeError(`${label}: ${file} cannot be read (${codeOf(error)})`)
  }
  if (isDirectory) throw new TypeError(`${label}: ${file} is a directory, not a token file`)

  return withMethod('private_key_jwt', async (request) => {
    const { signal } = request
    let text: string
    try {
      text = await readFile(file, { encoding: 'utf8', signal })
    } catch (error) {
      if (signal.aborted) throw signal.reason
      throw new TokenRequestError(
        `${label}: ${file} could not be read (${codeOf(error)}); nothing was sent`,
        { cause: error },
      )
    }
    const assertion = text.trim()
    if (assertion.length === 0) {
      throw new TokenRequestError(`${label}: ${file} is empty; nothing was sent`)
    }
    setAssertion(request, assertion)
  })
}

/**
 * The certificate's thumbprint header(s), computed once from the DER of the leaf
 * (RFC 7515 §4.1.7-8), after checking that the leaf's public key is the private key's.
 */
function thumbprintHeaders(
  certificate: string | string[],
  key: KeyObject,
  x5t: PrivateKeyJwtOptions['x5t'],
  label: string,
): Record<string, string> {
  const which = x5t ?? 'sha256'
  if (which !== 'sha256' && which !== 'sha1' && which !== 'both') {
    throw new TypeError(`${label}: x5t must be 'sha256', 'sha1' or 'both'`)
  }
  const chain = Array.isArray(certificate) ? certificate : [certificate]
  const pems: string[] = []
  for (const entry of chain) {
    if (typeof entry !== 'string') {
      throw new TypeError(`${label}: certificate must be PEM (a string or strings), leaf first`)
    }
    pems.push(
      ...(entry.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []),
    )
  }
  const leafPem = pems[0]
  if (leafPem === undefined) {
    throw new TypeError(
      `${label}: certificate must be a PEM certificate ("-----BEGIN CERTIFICATE-----…"), leaf first`,
    )
  }
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(leafPem)
  } catch (error) {
    throw new TypeError(`${label}: the certificate could not be read (${codeOf(error)})`)
  }
  let matches = false
  try {
    matches = leaf.checkPrivateKey(key)
  } catch {
    matches = false
  }
  if (!matches) {
    throw new TypeError(`${label}: the certificate's public key does not match the private key`)
  }
  const headers: Record<string, string> = {}
  if (which !== 'sha256') headers.x5t = createHash('sha1').update(leaf.raw).digest('base64url')
  if (which !== 'sha1') {
    headers['x5t#S256'] = createHash('sha256').update(leaf.raw).digest('base64url')
  }
  return headers
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : 'unreadable'
}

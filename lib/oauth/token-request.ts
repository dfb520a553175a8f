import type { Dispatcher } from 'undici'
import type { DPoPSigner } from '../dpop/signer.js'
import { TokenRequestError } from '../errors.js'
import type { TokenResponse } from '../types.js'
import { type ClientAuth, formEncode } from './client-auth.js'
import { send } from './http.js'
import { redactor } from './redaction.js'
import { parseTokenResponse } from './token-response.js'

/** A token endpoint, and the issuer it belongs to when that is known. */
export interface TokenEndpoint {
  readonly url: URL
  /** Handed to the client authentication (an assertion's `audience: 'issuer'`). */
  readonly issuer?: string | undefined
}

/** Where token requests go: a fixed endpoint, or a function that finds it (discovery). */
export type TokenEndpointSource =
  | TokenEndpoint
  | ((signal: AbortSignal) => TokenEndpoint | Promise<TokenEndpoint>)

/** Where and how token requests go: the part every grant shares. */
export interface TokenEndpointOptions {
  endpoint: TokenEndpointSource
  /** Required with `clientAuth`. */
  clientId?: string | undefined
  /** How the client authenticates; without one the request carries no client authentication. */
  clientAuth?: ClientAuth | undefined
  /** Send token requests through this undici dispatcher; default: global `fetch`. */
  dispatcher?: Dispatcher | undefined
}

/**
 * Sends one token request with a grant's form parameters; resolves to the parsed answer.
 * `secrets`: values among `params` (a subject token, an assertion) that are redacted
 * from every error, as the client authentication's credentials are.
 */
export type TokenRequest = (
  params: URLSearchParams,
  context: RequestContext,
  secrets?: readonly string[],
) => Promise<TokenResponse>

/** What one token fetch brings to its request: its signal, and the DPoP signer if any. */
export interface RequestContext {
  readonly signal: AbortSignal
  readonly dpop?: DPoPSigner | undefined
}

/** Form parameters a client authentication adds that are not credentials. */
const notCredentials = new Set(['client_id', 'client_assertion_type'])

/**
 * The one token-request core (RFC 6749 §3.2): a form POST to the token endpoint
 * with the client's authentication added, sent without following redirects,
 * its answer read up to 1 MiB and parsed (§5.1, §5.2) with every credential the
 * client authentication added, and every secret the grant names, redacted from
 * what reaches an error.
 */
export function tokenRequest(options: TokenEndpointOptions): TokenRequest {
  const { endpoint, clientAuth, dispatcher } = options
  const clientId = options.clientId ?? ''
  if (clientAuth !== undefined && (typeof clientId !== 'string' || clientId.length === 0)) {
    throw new TypeError('a token request needs a clientId')
  }
  const redactors = new RedactorCache(clientId)

  return async (params, { signal, dpop }, secrets = []) => {
    const { url, issuer } = typeof endpoint === 'function' ? await endpoint(signal) : endpoint
    // Where error messages say the request went: never the userinfo or query.
    const where = `${url.origin}${url.pathname}`
    for (let attempt = 1; ; attempt++) {
      // Every attempt authenticates afresh: an assertion's jti is single use.
      const form = new URLSearchParams(params)
      const headers: Record<string, string> = {
        accept: 'application/json',
        'content-type': 'application/x-www-form-urlencoded',
      }
      await clientAuth?.({ tokenUrl: url, issuer, clientId, form, headers, signal })
      // Built only when an error needs it: a fresh assertion means a new (costly) redactor.
      const credentials = credentialsAdded(params, form, headers)
      let built: ((text: string) => string) | undefined
      const redact = (text: string): string => {
        built ??= redactors.for(credentials, secrets)
        return built(text)
      }
      // RFC 9449 §5: a proof of the key, for the token endpoint (htm POST, htu its URL).
      if (dpop !== undefined) {
        headers.dpop = dpop.proof('POST', url.href, { nonce: dpop.nonce(url.origin) })
      }
      const raw = await send(
        { url, name: `Token endpoint ${where}`, expected: 'a token response' },
        { method: 'POST', headers, body: form.toString() },
        dispatcher,
        signal,
      )
      const nonce = raw.headers.get('dpop-nonce') ?? undefined
      if (dpop !== undefined && nonce) dpop.rememberNonce(url.origin, nonce)
      try {
        return parseTokenResponse(raw, where, redact)
      } catch (error) {
        // RFC 9449 §8: the server wants a nonce in the proof — once more, with it.
        const wantsNonce =
          error instanceof TokenRequestError && error.error === 'use_dpop_nonce' && !!nonce
        if (dpop === undefined || !wantsNonce || attempt > 1) throw error
      }
    }
  }
}

/** The values a client authentication added to the request: its credentials. */
function credentialsAdded(
  before: URLSearchParams,
  form: URLSearchParams,
  headers: Record<string, string>,
): string[] {
  const credentials: string[] = []
  for (const [name, value] of form) {
    if (!notCredentials.has(name) && !before.getAll(name).includes(value)) credentials.push(value)
  }
  for (const [name, value] of Object.entries(headers)) {
    if (name === 'accept' || name === 'content-type') continue
    // RFC 7617: the Basic credential is base64 of "id:secret" (form-encoded, RFC 6749 §2.3.1).
    credentials.push(/^Basic\s+(.+)$/i.exec(value)?.[1] ?? value)
  }
  return credentials
}

/**
 * The redactor for a set of credentials and grant secrets, made once per set (a regex
 * each): the same set comes back on every fetch unless a value is re-obtained per fetch.
 */
class RedactorCache {
  readonly #clientId: string
  #id = ''
  #redact: (text: string) => string = (text) => text

  constructor(clientId: string) {
    this.#clientId = clientId
  }

  for(credentials: readonly string[], grantSecrets: readonly string[]): (text: string) => string {
    const id = `${credentials.join('\0')}\u0001${grantSecrets.join('\0')}`
    if (id === this.#id) return this.#redact
    const secrets: string[] = [...grantSecrets]
    for (const credential of credentials) {
      const secret = basicSecret(credential) ?? credential
      // The pair first, so that "id:secret" goes as a whole; the Basic credential is taken
      // out whichever method sent the secret.
      secrets.push(
        `${this.#clientId}:${secret}`,
        secret,
        Buffer.from(`${formEncode(this.#clientId)}:${formEncode(secret)}`).toString('base64'),
      )
      if (secret !== credential) secrets.push(credential)
    }
    this.#id = id
    // Longest first: where one secret contains another, the whole of it goes.
    this.#redact = redactor(secrets.sort((a, b) => b.length - a.length))
    return this.#redact
  }
}

/** The secret inside a Basic credential (`base64(form(id):form(secret))`), if it is one. */
function basicSecret(credential: string): string | undefined {
  if (!/^[A-Za-z0-9+/]+=*$/.test(credential)) return undefined
  const decoded = Buffer.from(credential, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  try {
    return new URLSearchParams(`v=${decoded.slice(colon + 1)}`).get('v') ?? undefined
  } catch {
    return undefined
  }
}

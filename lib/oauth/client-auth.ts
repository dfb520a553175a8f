/** What a client authentication method gets to add its credentials to: one token request. */
export interface ClientAuthRequest {
  readonly tokenUrl: URL
  readonly issuer?: string | undefined
  readonly clientId: string
  /** The request's form (application/x-www-form-urlencoded body), to add parameters to. */
  readonly form: URLSearchParams
  /** The request's headers (lower-case names), to add headers to. */
  readonly headers: Record<string, string>
  readonly signal: AbortSignal
}

/**
 * How a client authenticates at the token endpoint (RFC 6749 §2.3): a function that
 * adds its credentials to one token request. Every method has this one type, so a
 * new method never edits a grant. Whatever it adds, except `client_id` and
 * `client_assertion_type`, counts as a credential: it is redacted from every error.
 */
export interface ClientAuth {
  (request: ClientAuthRequest): void | Promise<void>
  /**
   * The `token_endpoint_auth_method` it implements (`client_secret_basic`, …), for
   * checks against the server's metadata; a hand-written ClientAuth may leave it out.
   */
  readonly method?: string
}

/** `client_secret_basic` (RFC 6749 §2.3.1): HTTP Basic with the form-encoded id and secret. */
export function clientSecretBasic(secret: string): ClientAuth {
  const secretForm = formEncode(requireSecret(secret))
  return withMethod('client_secret_basic', ({ clientId, headers }) => {
    // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and base64'd.
    const credentials = `${formEncode(clientId)}:${secretForm}`
    headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`
  })
}

/** `client_secret_post` (RFC 6749 §2.3.1): id and secret as form parameters. */
export function clientSecretPost(secret: string): ClientAuth {
  requireSecret(secret)
  return withMethod('client_secret_post', ({ clientId, form }) => {
    form.set('client_id', clientId)
    form.set('client_secret', secret)
  })
}

/**
 * `tls_client_auth` (RFC 8705 §2.1; the same on the wire as `self_signed_tls_client_auth`,
 * §2.2): only `client_id` goes in the form (§2); the client authenticates with the TLS
 * client certificate of the token request's dispatcher (`new Agent({ connect: { cert, key } })`).
 */
export function tlsClientAuth(): ClientAuth {
  return withMethod('tls_client_auth', ({ clientId, form }) => {
    form.set('client_id', clientId)
  })
}

/** A ClientAuth that names the `token_endpoint_auth_method` it implements. */
export function withMethod(
  method: string,
  apply: (request: ClientAuthRequest) => void | Promise<void>,
): ClientAuth {
  return Object.defineProperty(apply, 'method', { value: method, enumerable: true }) as ClientAuth
}

function requireSecret(secret: string): string {
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new TypeError('a client secret must be a non-empty string')
  }
  return secret
}

/** application/x-www-form-urlencoded, as URLSearchParams writes it. */
export function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2)
}

/** What a `TokenRequestError` knows about the failure, all optional. */
export interface TokenRequestErrorDetails {
  /** HTTP status of the token endpoint's answer, when there was one. */
  status?: number | undefined
  /** OAuth `error` code (RFC 6749 §5.2), e.g. `invalid_client`. */
  error?: string | undefined
  /** OAuth `error_description` (RFC 6749 §5.2). */
  errorDescription?: string | undefined
  /** OAuth `error_uri` (RFC 6749 §5.2). */
  errorUri?: string | undefined
  /** Seconds the token endpoint asked us to wait (`Retry-After` on 429/503). */
  retryAfter?: number | undefined
  /** The underlying error (network failure, abort, a custom `fetchToken`'s error). */
  cause?: unknown
}

/**
 * The token endpoint said no, sent something that is not a token, could not be
 * reached or timed out. Its message and fields never hold a token or a secret.
 */
export class TokenRequestError extends Error {
  override readonly name = 'TokenRequestError'
  readonly status?: number
  readonly error?: string
  readonly errorDescription?: string
  readonly errorUri?: string
  readonly retryAfter?: number

  constructor(message: string, details: TokenRequestErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    if (details.status !== undefined) this.status = details.status
    if (details.error !== undefined) this.error = details.error
    if (details.errorDescription !== undefined) this.errorDescription = details.errorDescription
    if (details.errorUri !== undefined) this.errorUri = details.errorUri
    if (details.retryAfter !== undefined) this.retryAfter = details.retryAfter
  }
}

/**
 * Why `accessToken()` refused a request (it is never sent unauthenticated, nor to
 * an authority other than the one checked).
 */
export const AccessTokenErrorCode = {
  /** undici did not pass the request's origin (undici 7 `Pool`/`Client` compose): compose an `Agent`. */
  noOrigin: 'UAT_NO_ORIGIN',
  /** `key(request)` threw or did not return a string. */
  badKey: 'UAT_BAD_KEY',
  /** A `Host` header or an absolute-form path names another authority than the matched origin. */
  foreignAuthority: 'UAT_FOREIGN_AUTHORITY',
  /** The request's headers, or the ones `headers(token)` made, cannot be sent. */
  badHeaders: 'UAT_BAD_HEADERS',
} as const

export type AccessTokenErrorCode = (typeof AccessTokenErrorCode)[keyof typeof AccessTokenErrorCode]

/** Thrown for a request the interceptor cannot authorise safely (never sent unauthenticated). */
export class AccessTokenError extends Error {
  override readonly name = 'AccessTokenError'
  readonly code: AccessTokenErrorCode

  constructor(message: string, code: AccessTokenErrorCode, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

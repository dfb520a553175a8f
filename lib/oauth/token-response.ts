import { TokenRequestError } from '../errors.js'
import type { TokenResponse } from '../types.js'
import type { RawResponse } from './http.js'

/** RFC 6749 §5.1 (success) and §5.2 (error) responses. */
export function parseTokenResponse(
  raw: RawResponse,
  endpoint: string,
  redact: (text: string) => string,
): TokenResponse {
  const { status } = raw
  const retryAfter = parseRetryAfter(raw.headers.get('retry-after'))
  // Redacted only on the error paths that quote it: a redactor can be costly to build.
  const contentType = (): string =>
    redact(raw.headers.get('content-type') ?? 'no content-type').slice(0, 100)
  let json: unknown
  try {
    json = JSON.parse(raw.text)
  } catch {
    json = undefined
  }
  const fields =
    typeof json === 'object' && json !== null && !Array.isArray(json) ? json : undefined

  if (status < 200 || status >= 300) {
    if (status >= 300 && status < 400) {
      throw new TokenRequestError(
        `Token endpoint ${endpoint} answered ${status} (a redirect); token requests do not follow redirects`,
        { status },
      )
    }
    const oauth = fields === undefined ? undefined : oauthError(fields, redact)
    if (oauth === undefined) {
      throw new TokenRequestError(
        `Token endpoint ${endpoint} answered ${status} without an OAuth error (${contentType()})`,
        { status, retryAfter },
      )
    }
    throw oauthFailure(endpoint, status, oauth, retryAfter)
  }

  if (fields === undefined) {
    throw new TokenRequestError(
      `Token endpoint ${endpoint} answered ${status} with a body that is not a JSON object (${contentType()})`,
      { status },
    )
  }
  const {
    access_token: accessToken,
    token_type: tokenType,
    expires_in: expiresIn,
    scope,
    ...extra
  } = fields as Record<string, unknown>
  if (typeof accessToken !== 'string' || accessToken.length === 0) {
    const oauth = oauthError(fields, redact)
    // Some servers send an RFC 6749 §5.2 error with 200.
    if (oauth !== undefined) throw oauthFailure(endpoint, status, oauth, undefined)
    throw new TokenRequestError(
      `Token endpoint ${endpoint} answered ${status} without an access_token (or it is not a non-empty string)`,
      { status },
    )
  }
  if (tokenType !== undefined && (typeof tokenType !== 'string' || tokenType.length === 0)) {
    throw new TokenRequestError(
      `Token endpoint ${endpoint} answered ${status} with a token_type that is not a string`,
      { status },
    )
  }
  if (
    expiresIn !== undefined &&
    expiresIn !== null &&
    typeof expiresIn !== 'number' &&
    typeof expiresIn !== 'string'
  ) {
    throw new TokenRequestError(
      `Token endpoint ${endpoint} answered ${status} with an expires_in that is not a number`,
      { status },
    )
  }
  const response: TokenResponse = { ...extra, accessToken }
  if (tokenType !== undefined) response.tokenType = tokenType
  // A numeric string is allowed here (many servers send one); TokenCache checks the value.
  if (expiresIn !== undefined && expiresIn !== null) response.expiresIn = expiresIn as number
  if (scope !== undefined) response.scope = scope
  return response
}

interface OAuthError {
  error: string
  errorDescription?: string
  errorUri?: string
}

/** An RFC 6749 §5.2 error answer as a TokenRequestError: the one place its message is made. */
function oauthFailure(
  endpoint: string,
  status: number,
  oauth: OAuthError,
  retryAfter: number | undefined,
): TokenRequestError {
  const description = oauth.errorDescription ? `: ${oauth.errorDescription}` : ''
  return new TokenRequestError(
    `Token endpoint ${endpoint} answered ${status} ${oauth.error}${description}`,
    { status, retryAfter, ...oauth },
  )
}

/** The §5.2 fields of an answer (redacted, capped), or undefined when it has no `error`. */
function oauthError(fields: object, redact: (text: string) => string): OAuthError | undefined {
  const {
    error,
    error_description: description,
    error_uri: uri,
  } = fields as Record<string, unknown>
  if (typeof error !== 'string' || error.length === 0) return undefined
  const result: OAuthError = {
    error: redact(error).slice(0, 200),
  }
  if (typeof description === 'string') result.errorDescription = redact(description).slice(0, 1000)
  if (typeof uri === 'string') result.errorUri = redact(uri).slice(0, 1000)
  return result
}

/** `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date; seconds from now. */
function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text)
  const date = Date.parse(text)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, Math.ceil((date - now) / 1000))
}

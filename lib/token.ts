import { TokenRequestError } from './errors.js'
import { jwtTimes } from './jwt.js'
import type { Token, TokenResponse } from './types.js'

const maxLifetimeSeconds = 10 * 365 * 24 * 60 * 60
/** The shortest lifetime accepted, in seconds: shorter means a token request per request. */
const minLifetimeSeconds = 1
/** How far ahead of this host's clock another replica's may be (storedToken's obtainedAt). */
const maxClockAhead = 5 * 60 * 1000
/**
 * An access token that can be a header value as it is: visible ASCII (RFC 5234 VCHAR,
 * 0x21-0x7E), no spaces. RFC 6750 §2.1's b64token is a subset of it; so are the opaque
 * tokens real servers send that do not fit b64token (with `%`, `!`, `*` …). Anything
 * else — CR/LF/NUL, other controls, spaces, DEL, any character above U+007E (which
 * undici refuses in part, and which would be sent as Latin-1 at best) — makes every
 * request fail inside undici until the token expires, or worse; it is refused at once.
 */
const headerSafeToken = /^[\x21-\x7e]+$/
/** `token_type` becomes the auth-scheme: an RFC 9110 §5.6.2 token (tchar), as §11.1 asks. */
const authScheme = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * Turns what a token source returned into a cacheable Token, or throws a
 * TokenRequestError. Lifetime: `expiresIn` (RFC 6749 §5.1), else `expiresAt`,
 * else the JWT `exp` claim (RFC 7519 §4.1.4), else `defaultLifetime`; when the
 * access token is a JWT with a plausible `exp` earlier than that, `exp` (an
 * issuer flooring `iat` to the second sends an `exp` up to 1 s before its
 * `expires_in` ends; the payload is not verified, so it only ever shortens).
 * The stated lifetime (from `expiresIn`, `expiresAt`, or `exp` when it is the only
 * one) must be at least 1 s and at most ten years; an `exp` that shortens it need only
 * be in the future. The access token must be visible ASCII without spaces and
 * `tokenType` an RFC 9110 token.
 */
export function toToken(response: TokenResponse, now: number, defaultLifetime: number): Token {
  if (typeof response !== 'object' || response === null) {
    throw new TokenRequestError('fetchToken returned no token response object')
  }
  const { accessToken, tokenType, expiresIn, expiresAt } = response
  if (typeof accessToken !== 'string' || accessToken.length === 0) {
    throw new TokenRequestError('Token response has no access_token (or it is empty)')
  }
  if (!headerSafeToken.test(accessToken)) {
    throw new TokenRequestError(
      'Token response has an access_token that cannot be sent in a header: it must be visible ASCII without spaces (RFC 6750 §2.1, RFC 9110 §5.5)',
    )
  }
  if (tokenType !== undefined && (typeof tokenType !== 'string' || !authScheme.test(tokenType))) {
    throw new TokenRequestError(
      "Token response has a token_type that is not an RFC 9110 token (letters, digits and !#$%&'*+-.^_`|~)",
    )
  }
  let expiry: number
  let lifetimeSeconds: number | undefined
  const jwt = jwtTimes(accessToken)
  if (expiresIn !== undefined && expiresIn !== null) {
    lifetimeSeconds = secondsOf(expiresIn)
    expiry = now + lifetimeSeconds * 1000
  } else if (expiresAt !== undefined && expiresAt !== null) {
    expiry =
      expiresAt instanceof Date
        ? expiresAt.getTime()
        : typeof expiresAt === 'number'
          ? expiresAt
          : Number.NaN
    if (!Number.isFinite(expiry)) {
      throw new TokenRequestError('Token response has an expiresAt that is not a date or epoch ms')
    }
  } else {
    expiry = jwt?.exp ?? now + defaultLifetime
  }
  if (!(expiry > now)) {
    throw new TokenRequestError('Token response is already expired when it arrives')
  }
  // Also catches a lifetime too small to outlast the clock's resolution.
  if (expiry - now < minLifetimeSeconds * 1000) {
    throw new TokenRequestError(
      `Token response expires in ${expiry - now} ms: below the minimum lifetime of ${minLifetimeSeconds} s`,
    )
  }
  if (expiry - now > maxLifetimeSeconds * 1000) {
    throw new TokenRequestError(
      'Token response expires more than ten years from now: not a plausible lifetime',
    )
  }
  // The earlier of the two wins: the API checks exp, whatever expires_in said. The 1 s
  // minimum is not applied here: an issuer that floors iat leaves 0.x s of a short token
  // whenever the request lands late in a second, and refusing that token would fail
  // requests for a whole backoff instead of fetching again a little sooner.
  if (jwt !== undefined && jwt.exp < expiry) {
    if (!(jwt.exp > now)) {
      throw new TokenRequestError(
        "Token response is already expired when it arrives: its JWT exp has passed (is the token endpoint's clock behind this host's?)",
      )
    }
    expiry = jwt.exp
  }
  const token: Token = {
    ...response,
    accessToken,
    tokenType: tokenType ?? 'Bearer',
    expiresAt: expiry,
    obtainedAt: now,
  }
  if (lifetimeSeconds !== undefined) token.expiresIn = lifetimeSeconds
  return token
}

/** `expires_in` (RFC 6749 §5.1): seconds (at least 1), as a number or numeric string. */
function secondsOf(value: unknown): number {
  const seconds =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value)
        ? Number(value)
        : Number.NaN
  if (!Number.isFinite(seconds)) {
    throw new TokenRequestError(
      `Token response has expires_in ${describe(value)}: it must be a number of seconds`,
    )
  }
  if (seconds < minLifetimeSeconds) {
    throw new TokenRequestError(
      `Token response has expires_in ${describe(value)}: below the minimum of ${minLifetimeSeconds} s`,
    )
  }
  if (seconds > maxLifetimeSeconds) {
    throw new TokenRequestError(
      `Token response has expires_in ${describe(value)}: more than ten years is not a plausible lifetime`,
    )
  }
  return seconds
}

/** A short, safe rendering of a bad value for an error message. */
function describe(value: unknown): string {
  let text: string
  if (typeof value === 'string') text = JSON.stringify(value)
  else if (typeof value === 'number' || typeof value === 'boolean' || value === null)
    text = String(value)
  else text = `a value of type ${typeof value}`
  return text.length > 40 ? `${text.slice(0, 40)}…` : text
}

/** Whether a value read from a store has a Token's shape. */
function isToken(value: unknown): value is Token {
  if (typeof value !== 'object' || value === null) return false
  const token = value as Partial<Token>
  return (
    typeof token.accessToken === 'string' &&
    token.accessToken.length > 0 &&
    typeof token.tokenType === 'string' &&
    typeof token.expiresAt === 'number' &&
    typeof token.obtainedAt === 'number'
  )
}

/**
 * A value read from a store (possibly shared, e.g. Redis, possibly planted) when it is a
 * token this package could have made: a Token's shape, a header-safe access token and
 * token type (as `toToken` asks), a lifetime (`expiresAt − obtainedAt`) above zero and
 * at most ten years, `expiresAt` at most ten years from `now`, and `obtainedAt` no later than five
 * minutes past `now` (another replica's clock may be that far ahead). Else undefined:
 * a miss. An expired token is returned; whether it is usable is the cache's business.
 */
export function storedToken(value: unknown, now: number): Token | undefined {
  if (!isToken(value)) return undefined
  const { accessToken, tokenType, expiresAt, obtainedAt } = value
  if (!headerSafeToken.test(accessToken) || !authScheme.test(tokenType)) return undefined
  if (!Number.isFinite(expiresAt) || !Number.isFinite(obtainedAt)) return undefined
  // Not the 1 s minimum: a JWT exp may have shortened a fetched token below it.
  const lifetime = expiresAt - obtainedAt
  if (!(lifetime > 0) || lifetime > maxLifetimeSeconds * 1000) return undefined
  if (expiresAt - now > maxLifetimeSeconds * 1000) return undefined
  if (obtainedAt > now + maxClockAhead) return undefined
  return value
}

/** Skew: `clockSkew`, but never more than a tenth of the token's lifetime. */
export function skewOf(token: Token, clockSkew: number): number {
  return Math.min(clockSkew, (token.expiresAt - token.obtainedAt) / 10)
}

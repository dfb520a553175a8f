import { TokenRequestError } from './errors.js'
import { jwtExpiry } from './jwt.js'
import type { Token, TokenResponse } from './types.js'

const maxLifetimeSeconds = 10 * 365 * 24 * 60 * 60
/** Characters a header value cannot carry (RFC 9110 §5.5: no CR, LF or NUL). */
const headerUnsafe = /[\r\n\0]/

/**
 * Turns what a token source returned into a cacheable Token, or throws a
 * TokenRequestError. Lifetime: `expiresIn` (RFC 6749 §5.1), else `expiresAt`,
 * else the JWT `exp` claim (RFC 7519 §4.1.4), else `defaultLifetime`.
 */
export function toToken(response: TokenResponse, now: number, defaultLifetime: number): Token {
  if (typeof response !== 'object' || response === null) {
    throw new TokenRequestError('fetchToken returned no token response object')
  }
  const { accessToken, tokenType, expiresIn, expiresAt } = response
  if (typeof accessToken !== 'string' || accessToken.length === 0) {
    throw new TokenRequestError('Token response has no access_token (or it is empty)')
  }
  if (headerUnsafe.test(accessToken)) {
    throw new TokenRequestError('Token response has an access_token with CR, LF or NUL in it')
  }
  if (
    tokenType !== undefined &&
    (typeof tokenType !== 'string' || tokenType.length === 0 || headerUnsafe.test(tokenType))
  ) {
    throw new TokenRequestError('Token response has a token_type that is not a plain string')
  }
  let expiry: number
  let lifetimeSeconds: number | undefined
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
    expiry = jwtExpiry(accessToken) ?? now + defaultLifetime
  }
  // Also catches a lifetime too small to outlast the clock's resolution.
  if (!(expiry > now)) {
    throw new TokenRequestError('Token response is already expired when it arrives')
  }
  if (expiry - now > maxLifetimeSeconds * 1000) {
    throw new TokenRequestError(
      'Token response expires more than ten years from now: not a plausible lifetime',
    )
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

/** `expires_in` (RFC 6749 §5.1): a positive number of seconds, as a number or numeric string. */
function secondsOf(value: unknown): number {
  const seconds =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value)
        ? Number(value)
        : Number.NaN
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new TokenRequestError(
      `Token response has expires_in ${describe(value)}: it must be a positive number of seconds`,
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
export function isToken(value: unknown): value is Token {
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

/** Skew: `clockSkew`, but never more than a tenth of the token's lifetime. */
export function skewOf(token: Token, clockSkew: number): number {
  return Math.min(clockSkew, (token.expiresAt - token.obtainedAt) / 10)
}

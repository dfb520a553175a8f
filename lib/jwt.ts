/** The time claims of a JWT (RFC 7519 §4.1.4-6), in epoch ms. */
export interface JwtTimes {
  /** `exp`: the token must not be accepted from then on. */
  exp: number
  /** `iat`: when it was issued, if the issuer said. */
  iat?: number
  /** `nbf`: the token must not be accepted before then, if the issuer said. */
  nbf?: number
}

/**
 * The `exp` claim (RFC 7519 §4.1.4) of a JWT access token, in epoch ms, or
 * undefined when the token is not a JWT or has no numeric `exp`. The token is
 * not verified: this only tells how long the issuer meant it to live.
 */
export function jwtExpiry(token: string): number | undefined {
  const payload = jwtPayload(token)
  if (payload === undefined || !('exp' in payload)) return undefined
  const { exp } = payload
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined
}

/**
 * `exp`, and `iat` and `nbf` when present, of a JWT access token, in epoch ms; undefined
 * when the token is not a JWT, has no numeric `exp`, or its claims contradict each other
 * (an `iat` or `nbf` that is not a number, negative, or not before `exp`; an `exp` that is
 * not positive) — such a payload tells nothing reliable. Not verified: callers may only
 * use it to shorten a lifetime they know from elsewhere, never to lengthen it.
 */
export function jwtTimes(token: string): JwtTimes | undefined {
  const payload = jwtPayload(token)
  if (payload === undefined) return undefined
  const { exp, iat, nbf } = payload as { exp?: unknown; iat?: unknown; nbf?: unknown }
  if (typeof exp !== 'number' || !Number.isFinite(exp) || exp <= 0) return undefined
  const times: JwtTimes = { exp: exp * 1000 }
  for (const [name, value] of [
    ['iat', iat],
    ['nbf', nbf],
  ] as const) {
    if (!(name in payload)) continue
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= exp) {
      return undefined
    }
    times[name] = value * 1000
  }
  return times
}

/** The payload of a JWS compact serialization (RFC 7515 §7.1) when it is a JSON object. */
function jwtPayload(token: string): object | undefined {
  const first = token.indexOf('.')
  if (first <= 0) return undefined
  const second = token.indexOf('.', first + 1)
  if (second < 0 || token.indexOf('.', second + 1) >= 0) return undefined
  try {
    const payload: unknown = JSON.parse(
      Buffer.from(token.slice(first + 1, second), 'base64url').toString('utf8'),
    )
    return typeof payload === 'object' && payload !== null && !Array.isArray(payload)
      ? payload
      : undefined
  } catch {
    return undefined
  }
}

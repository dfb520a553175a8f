/**
 * The `exp` claim (RFC 7519 §4.1.4) of a JWT access token, in epoch ms, or
 * undefined when the token is not a JWT or has no numeric `exp`. The token is
 * not verified: this only tells how long the issuer meant it to live.
 */
export function jwtExpiry(token: string): number | undefined {
  const first = token.indexOf('.')
  if (first <= 0) return undefined
  const second = token.indexOf('.', first + 1)
  if (second < 0 || token.indexOf('.', second + 1) >= 0) return undefined
  try {
    const payload: unknown = JSON.parse(
      Buffer.from(token.slice(first + 1, second), 'base64url').toString('utf8'),
    )
    if (typeof payload !== 'object' || payload === null || !('exp' in payload)) return undefined
    const exp = payload.exp
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined
  } catch {
    return undefined
  }
}

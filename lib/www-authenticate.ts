/**
 * Whether a 401's `WWW-Authenticate` allows a retry with a new token.
 * RFC 6750 §3.1: `invalid_token` means the token is expired, revoked or
 * malformed, so a new one may help; `invalid_request` or `insufficient_scope`
 * will fail the same way with any token. No challenge, or one without an error
 * (RFC 6750 §3: the client may not have sent a token), also allows a retry.
 */
export function challengeAllowsRetry(header: string | string[] | undefined): boolean {
  if (header === undefined) return true
  const errors = Array.isArray(header) ? header.flatMap(errorCodes) : errorCodes(header)
  return errors.length === 0 || errors.includes('invalid_token')
}

/** The `error` auth-params (RFC 9110 §11.6.1) of every challenge in one header value. */
function errorCodes(value: string): string[] {
  const codes: string[] = []
  // auth-param = token BWS "=" BWS ( token / quoted-string )
  const param = /([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)/g
  for (const match of value.matchAll(param)) {
    if (match[1]?.toLowerCase() !== 'error') continue
    const raw = match[2] ?? ''
    codes.push(raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw)
  }
  return codes
}

// @ts-check
// Unsigned JWTs (alg none), for token sources and servers that hand out JWT access tokens.

/**
 * base64url of a JSON value (or, with `raw`, of the text itself), as a JWT segment.
 * @param {unknown} value
 * @param {boolean} [raw]
 */
export function segment(value, raw = false) {
  return Buffer.from(raw ? String(value) : JSON.stringify(value)).toString('base64url')
}

/**
 * An unsigned JWT, header.payload.signature, with `payload` as its payload.
 * @param {unknown} payload
 * @param {{ header?: Record<string, unknown>, signature?: string }} [options]
 *   the header `{ alg: 'none', typ: 'JWT' }` and the signature `c2ln` unless given
 */
export function unsignedJwt(payload, options = {}) {
  const header = options.header ?? { alg: 'none', typ: 'JWT' }
  return `${segment(header)}.${segment(payload)}.${options.signature ?? 'c2ln'}`
}

/**
 * The payload of a JWT, unverified, from the token or from `Bearer <token>`; undefined if it
 * has none that parses.
 * @param {string | undefined} token
 * @returns {Record<string, unknown> | undefined}
 */
export function jwtPayload(token) {
  const payload = token?.split(' ').at(-1)?.split('.')[1]
  if (payload === undefined) return undefined
  try {
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
}

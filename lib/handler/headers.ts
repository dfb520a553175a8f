import { AccessTokenError, AccessTokenErrorCode } from '../errors.js'
import { isOwnAuthority } from '../origins.js'
import type { Token } from '../types.js'
import type { DispatchOptions } from './types.js'

/** Request headers in any of the shapes undici accepts. */
export type AnyHeaders =
  | Record<string, string | string[] | number | undefined | null>
  | ReadonlyArray<string | Buffer | string[]>
  | Iterable<readonly [string, string | string[] | undefined]>
  | null
  | undefined

/** The headers a token puts on a request: lower-case names, and their values in the same order. */
export interface TokenHeaders {
  readonly names: readonly string[]
  readonly values: readonly string[]
}

/** `headers` option of `accessToken()`: the header(s) a token is sent in. */
export type HeadersForToken = (token: Token) => Record<string, string>

/**
 * The default: `authorization: <type> <token>`. RFC 6750 §2.1 spells the scheme
 * `Bearer`, and servers may answer `bearer` (RFC 6749 §5.1 makes it
 * case-insensitive), so any case of it is sent as `Bearer`; another type (DPoP,
 * MAC) is sent as the server spelled it.
 */
export function authorizationHeader(token: Token): Record<string, string> {
  const type = token.tokenType.toLowerCase()
  if (type === 'n_a') {
    // RFC 8693 §2.2.1: "N_A" says the issued token is not an access token (e.g. an ID token).
    throw badHeaders(
      'token_type N_A (RFC 8693 §2.2.1): the token is not an access token; give accessToken() a headers(token) that says how to send it',
    )
  }
  const scheme = type === 'bearer' ? 'Bearer' : token.tokenType
  return { authorization: `${scheme} ${token.accessToken}` }
}

export function tokenHeaders(record: Record<string, string>): TokenHeaders {
  const names: string[] = []
  const values: string[] = []
  for (const [name, value] of Object.entries(record)) {
    if (typeof value !== 'string') {
      throw badHeaders(`headers(token) must map header names to strings; "${name}" is not one`)
    }
    names.push(name.toLowerCase())
    values.push(value)
  }
  return { names, values }
}

/** Header names may arrive as Buffers (raw headers); undici's request options want strings. */
function nameString(name: unknown): string {
  return Buffer.isBuffer(name) ? name.toString('latin1') : String(name)
}

/**
 * A copy of `headers` with the token's headers set: any header of the same name,
 * in any case, is replaced; every other header is kept as it was. Plain objects
 * stay plain objects; the three other shapes become a flat `[name, value, …]`
 * array, which every undici version reads. A `Host` header that names another
 * authority than `origin` is refused in the same pass (AccessTokenError).
 */
export function withTokenHeaders(
  headers: AnyHeaders,
  set: TokenHeaders,
  origin: string,
): Record<string, unknown> | unknown[] {
  const { names, values } = set
  if (headers === null || headers === undefined) {
    const out: Record<string, unknown> = {}
    for (let i = 0; i < names.length; i++) out[names[i] as string] = values[i]
    return out
  }
  if (Array.isArray(headers)) {
    const out: unknown[] = []
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const [name, value] of headers as ReadonlyArray<readonly [unknown, unknown]>) {
        keep(out, nameString(name), value, names, origin)
      }
    } else {
      if (headers.length % 2 !== 0) {
        throw badHeaders('headers array must have an even number of entries: [name, value, …]')
      }
      for (let i = 0; i < headers.length; i += 2) {
        keep(out, nameString(headers[i]), headers[i + 1], names, origin)
      }
    }
    for (let i = 0; i < names.length; i++) out.push(names[i], values[i])
    return out
  }
  if (typeof headers !== 'object') {
    throw badHeaders('headers must be an object, an array or an iterable of [name, value]')
  }
  const prototype = Object.getPrototypeOf(headers)
  if (prototype !== Object.prototype && prototype !== null && Symbol.iterator in headers) {
    const out: unknown[] = []
    for (const [name, value] of headers as Iterable<readonly [unknown, unknown]>) {
      keep(out, nameString(name), value, names, origin)
    }
    for (let i = 0; i < names.length; i++) out.push(names[i], values[i])
    return out
  }
  const out: Record<string, unknown> = {}
  for (const name in headers) {
    const lower = name.toLowerCase()
    if (names.includes(lower)) continue
    const value = (headers as Record<string, unknown>)[name]
    if (lower === 'host') checkHost(value, origin)
    out[name] = value
  }
  for (let i = 0; i < names.length; i++) out[names[i] as string] = values[i]
  return out
}

/** Appends a caller's header to a flat array unless the token replaces it. */
function keep(
  out: unknown[],
  name: string,
  value: unknown,
  replaced: readonly string[],
  origin: string,
): void {
  const lower = name.toLowerCase()
  if (replaced.includes(lower)) return
  if (lower === 'host') checkHost(value, origin)
  out.push(name, value)
}

function checkHost(value: unknown, origin: string): void {
  if (isOwnAuthority(value, origin)) return
  throw new AccessTokenError(
    `A Host header naming another authority than ${origin} is refused: the token is only for ${origin}`,
    AccessTokenErrorCode.foreignAuthority,
  )
}

function badHeaders(message: string): AccessTokenError {
  return new AccessTokenError(message, AccessTokenErrorCode.badHeaders)
}

/**
 * A copy of `options` with other `headers` (and, for a retry, another `body`).
 * V8 copies an object fast only when the keys added are ones the source already
 * has: a spread that adds a new key builds a slow object (about 0.5 µs, measured
 * on Node 20), so a key the source lacks goes first instead.
 */
export function withHeaders(
  options: DispatchOptions,
  headers: unknown,
  body?: unknown,
): DispatchOptions {
  if (body !== undefined) return { ...options, headers, body }
  return 'headers' in options ? { ...options, headers } : { headers, ...options }
}

/*
 * The policy an `accessToken()` interceptor settles once, and what it makes of one request:
 * the key of the token it gets (refused if its target names another authority) and its
 * options carrying that token's headers — and a DPoP proof — for one attempt. Shared by
 * the cached-token path (send-with-token.ts) and every attempt of AccessTokenHandler.
 */
import type { CacheInternals } from '../cache/internal.js'
import type { TokenCache } from '../cache/token-cache.js'
import { AccessTokenError, AccessTokenErrorCode } from '../errors.js'
import type { Token } from '../types.js'
import { type AnyHeaders, type TokenHeaders, withHeaders, withTokenHeaders } from './headers.js'
import type { DispatchOptions } from './types.js'

/** What an `accessToken()` interceptor decided once, for every request it decorates. */
export interface RequestPolicy {
  readonly cache: TokenCache
  /** The cache's internals (cache/internal.ts). */
  readonly internals: CacheInternals
  /** Which token a request gets; undefined: `'default'`. */
  readonly keyOf:
    | ((request: { origin: string; path: string; method: string }) => string)
    | undefined
  /** The headers a token is sent in (memoised per token). */
  readonly headersFor: (token: Token) => TokenHeaders
  /** Bytes of a one-shot body recorded for the retry; undefined: no retry after a 401. */
  readonly maxReplayBytes: number | undefined
}

const defaultKey = 'default'

/**
 * `options` with the token's headers (and `body` for a retry) — and, for a DPoP-bound
 * token, a fresh proof for this request with the origin's last nonce (RFC 9449 §7.1).
 */
export function decorated(
  policy: RequestPolicy,
  options: DispatchOptions,
  token: Token,
  origin: string,
  body?: unknown,
): DispatchOptions {
  let set = policy.headersFor(token)
  const { dpop } = policy.internals
  if (token.dpopThumbprint !== undefined && dpop !== undefined) {
    const proof = dpop.proof(options.method, origin + options.path, {
      nonce: dpop.nonce(origin),
      accessToken: token.accessToken,
    })
    set = { names: [...set.names, 'dpop'], values: [...set.values, proof] }
  }
  const headers = withTokenHeaders(options.headers as AnyHeaders, set, origin)
  return withHeaders(options, headers, body)
}

/** The key of the token a request gets; throws for a target that names another authority. */
export function keyOf(policy: RequestPolicy, options: DispatchOptions, origin: string): string {
  const { path, method } = options
  // RFC 9112 §3.2.2: an absolute-form target names its own authority, which the server
  // uses instead of the connection's; only origin-form (and `*`) keeps the one matched.
  if (path.charCodeAt(0) !== 47 /* / */ && path !== '*') {
    throw new AccessTokenError(
      `A request to ${origin} whose path is not origin-form (it names another authority) is refused`,
      AccessTokenErrorCode.foreignAuthority,
    )
  }
  if (policy.keyOf === undefined) return defaultKey
  const key = policy.keyOf({ origin, path, method })
  if (typeof key !== 'string') {
    throw new AccessTokenError(
      `accessToken's key(request) must return a string, got ${typeof key}`,
      AccessTokenErrorCode.badKey,
    )
  }
  return key
}

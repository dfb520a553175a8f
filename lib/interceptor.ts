import type { Dispatcher } from 'undici'
import { internalsOf } from './cache/internal.js'
import { TokenCache, type TokenCacheOptions } from './cache/token-cache.js'
import { isInsideTokenFetch } from './cache/token-fetch-context.js'
import { AccessTokenError, AccessTokenErrorCode } from './errors.js'
import { refuse } from './handler/controllers.js'
import {
  authorizationHeader,
  type HeadersForToken,
  type TokenHeaders,
  tokenHeaders,
} from './handler/headers.js'
import { toNewApi } from './handler/legacy.js'
import type { RequestPolicy } from './handler/request-policy.js'
import { sendWithToken } from './handler/send-with-token.js'
import type { AnyHandler, Dispatch, DispatchOptions } from './handler/types.js'
import { OriginMatcher, type Origins } from './origins.js'
import type { Token } from './types.js'

/** Options of `accessToken()`: where tokens go, and the token cache's options. */
export interface AccessTokenOptions extends Partial<TokenCacheOptions> {
  /** The only origins that ever see the token: origin(s), or a predicate of the normalised origin. */
  origins: Origins
  /** Share one cache between interceptors; otherwise one is built from `fetchToken` and the cache options. */
  tokens?: TokenCache
  /** Which token a request gets; default `'default'`. */
  key?: (request: { origin: string; path: string; method: string }) => string
  /** The header(s) a token is sent in; default `{ authorization: 'Bearer <token>' }`. */
  headers?: HeadersForToken
  /** Retry once with a new token after a 401; default true. */
  retryOnUnauthorized?: boolean
  /** Stream bodies up to this many bytes are recorded for the retry; default 1 MiB. */
  maxReplayBytes?: number
}

/**
 * An undici interceptor that sends requests to `origins` with an access token:
 * cached until it expires, fetched once however many requests wait for it,
 * renewed and retried once after a 401. Other requests pass through untouched.
 *
 * @example
 * const api = new Agent().compose(accessToken({ origins: 'https://api.example.com', fetchToken }))
 */
export function accessToken(options: AccessTokenOptions): Dispatcher.DispatcherComposeInterceptor {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('accessToken needs options: { origins, fetchToken } or { origins, tokens }')
  }
  const matcher = new OriginMatcher(options.origins)
  const maxReplayBytes = options.maxReplayBytes ?? 1024 * 1024
  if (!(maxReplayBytes >= 0)) throw new RangeError('maxReplayBytes must be a number of bytes ≥ 0')
  if (options.tokens !== undefined && options.dpop !== undefined) {
    throw new TypeError(
      'accessToken: give dpop to the TokenCache in `tokens` (new TokenCache({ dpop })), not to both',
    )
  }
  const cache = options.tokens ?? newTokenCache(options)
  const policy: RequestPolicy = {
    cache,
    internals: internalsOf(cache),
    keyOf: options.key,
    headersFor: memoizeHeaders(options.headers ?? authorizationHeader),
    maxReplayBytes: options.retryOnUnauthorized === false ? undefined : maxReplayBytes,
  }

  /**
   * `connectsTo`: undici 8 hands a `Client`/`Pool` its own origin here, the only one
   * it ever connects to whatever `opts.origin` says, so that is what gets matched
   * (undici 7 passes nothing: an `Agent` routes by `opts.origin`).
   */
  const interceptor = (dispatch: Dispatch, connectsTo?: string | null): Dispatch =>
    function dispatchWithAccessToken(opts: DispatchOptions, handler: AnyHandler): boolean {
      const origin = typeof connectsTo === 'string' ? connectsTo : opts.origin
      if (origin === undefined || origin === null) return refuse(toNewApi(handler), noOrigin())
      const matched = matcher.match(origin)
      // The token request itself, or whatever a custom fetchToken sends, is never decorated.
      if (matched === undefined || isInsideTokenFetch()) return dispatch(opts, toNewApi(handler))
      return sendWithToken(policy, dispatch, opts, toNewApi(handler), matched)
    }
  return interceptor as unknown as Dispatcher.DispatcherComposeInterceptor
}

function newTokenCache(options: AccessTokenOptions): TokenCache {
  if (typeof options.fetchToken !== 'function') {
    throw new TypeError(
      'accessToken needs `fetchToken` (e.g. clientCredentials({...})) or `tokens`',
    )
  }
  return new TokenCache(options as TokenCacheOptions)
}

/** The token's headers, computed once per token rather than once per request. */
function memoizeHeaders(headers: HeadersForToken): (token: Token) => TokenHeaders {
  let lastToken: Token | undefined
  let lastHeaders: TokenHeaders | undefined
  const byToken = new WeakMap<Token, TokenHeaders>()
  return (token) => {
    if (token === lastToken) return lastHeaders as TokenHeaders
    let computed = byToken.get(token)
    if (computed === undefined) {
      computed = tokenHeaders(headers(token))
      byToken.set(token, computed)
    }
    lastToken = token
    lastHeaders = computed
    return computed
  }
}

/**
 * undici 7's `Pool`/`Client` compose calls interceptors without `origin`: the
 * request's origin cannot be checked, so it is refused rather than sent without
 * (or with a misplaced) token.
 */
function noOrigin(): AccessTokenError {
  return new AccessTokenError(
    'accessToken() cannot see this request’s origin (undici 7 Pool/Client compose does not pass it); compose it on an Agent instead: new Agent().compose(accessToken(...))',
    AccessTokenErrorCode.noOrigin,
  )
}

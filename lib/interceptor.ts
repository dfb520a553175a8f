import type { Dispatcher } from 'undici'
import { isResendable, recordBody } from './body.js'
import { AccessTokenError, AccessTokenErrorCode } from './errors.js'
import {
  type AnyHandler,
  type Dispatch,
  type DispatchOptions,
  type Handler,
  withHeaders,
} from './handler-api.js'
import {
  type AnyHeaders,
  authorizationHeader,
  type HeadersForToken,
  type TokenHeaders,
  tokenHeaders,
  withTokenHeaders,
} from './headers.js'
import { toNewApi } from './legacy-handler.js'
import { OriginMatcher, type Origins } from './origins.js'
import { peekToken, TokenCache, type TokenCacheOptions } from './token-cache.js'
import { isInsideTokenFetch } from './token-fetch-context.js'
import type { Token } from './types.js'
import { type Replay, UnauthorizedHandler } from './unauthorized-handler.js'

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

const defaultKey = 'default'

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
  const tokens = options.tokens ?? newTokenCache(options)
  const keyOf = options.key
  const headersFor = memoizeHeaders(options.headers ?? authorizationHeader)
  const retryOnUnauthorized = options.retryOnUnauthorized ?? true
  const maxReplayBytes = options.maxReplayBytes ?? 1024 * 1024
  if (!(maxReplayBytes >= 0)) throw new RangeError('maxReplayBytes must be a number of bytes ≥ 0')

  /**
   * `connectsTo`: undici 8 hands a `Client`/`Pool` its own origin here, the only one
   * it ever connects to whatever `opts.origin` says, so that is what gets matched
   * (undici 7 passes nothing: an `Agent` routes by `opts.origin`).
   */
  const interceptor = (dispatch: Dispatch, connectsTo?: string | null): Dispatch =>
    function dispatchWithAccessToken(opts: DispatchOptions, handler: AnyHandler): boolean {
      const origin = typeof connectsTo === 'string' ? connectsTo : opts.origin
      if (origin === undefined || origin === null) return refuseWithoutOrigin(handler)
      const matched = matcher.match(origin)
      // The token request itself, or whatever a custom fetchToken sends, is never decorated.
      if (matched === undefined || isInsideTokenFetch()) return dispatch(opts, toNewApi(handler))
      try {
        return send(dispatch, opts, toNewApi(handler), matched)
      } catch (error) {
        return refuse(handler, error)
      }
    }

  /** A matched request: checked, then sent with the cached token or once one arrives. */
  function send(
    dispatch: Dispatch,
    opts: DispatchOptions,
    caller: Handler,
    origin: string,
  ): boolean {
    // RFC 9112 §3.2.2: an absolute-form target names its own authority, which the server
    // uses instead of the connection's; only origin-form (and `*`) keeps the one matched.
    const { path } = opts
    if (path.charCodeAt(0) !== 47 /* / */ && path !== '*') throw foreignPath(origin)
    const key = keyOf === undefined ? defaultKey : keyOf({ origin, path, method: opts.method })
    if (typeof key !== 'string') throw badKey(key)
    const token = peekToken(tokens, key)
    let replay: Replay = 'never'
    let sent = opts
    if (retryOnUnauthorized && !opts.upgrade && opts.method !== 'CONNECT') {
      if (isResendable(opts.body)) {
        replay = 'as-is'
      } else {
        const recording = recordBody(opts.body, maxReplayBytes)
        if (recording !== undefined) {
          replay = recording
          sent = { ...opts, body: recording.body }
        }
      }
    }
    if (token !== undefined && replay === 'never') {
      // Nothing to retry: no handler of ours in between.
      const headers = withTokenHeaders(opts.headers as AnyHeaders, headersFor(token), origin)
      return dispatch(withHeaders(opts, headers), caller)
    }
    const request = new UnauthorizedHandler({
      dispatch,
      options: sent,
      origin,
      handler: caller,
      tokens,
      key,
      headersFor,
      replay,
    })
    return token !== undefined ? request.send(token) : request.sendWhen(tokens.get(key))
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
function refuseWithoutOrigin(handler: AnyHandler): boolean {
  return refuse(
    handler,
    new AccessTokenError(
      'accessToken() cannot see this request’s origin (undici 7 Pool/Client compose does not pass it); compose it on an Agent instead: new Agent().compose(accessToken(...))',
      AccessTokenErrorCode.noOrigin,
    ),
  )
}

function badKey(key: unknown): AccessTokenError {
  return new AccessTokenError(
    `accessToken's key(request) must return a string, got ${typeof key}`,
    AccessTokenErrorCode.badKey,
  )
}

function foreignPath(origin: string): AccessTokenError {
  return new AccessTokenError(
    `A request to ${origin} whose path is not origin-form (it names another authority) is refused`,
    AccessTokenErrorCode.foreignAuthority,
  )
}

/** Ends a request that is never sent, through the caller's handler. */
function refuse(handler: AnyHandler, error: unknown): boolean {
  const caller: Handler = toNewApi(handler)
  const controller = new RefusedController()
  caller.onRequestStart?.(controller, {})
  caller.onResponseError?.(controller, error instanceof Error ? error : new Error(String(error)))
  return true
}

/** The controller of a request that is never sent: nothing to pause or abort. */
class RefusedController {
  readonly aborted = false
  readonly paused = false
  readonly reason = null
  abort(): void {}
  pause(): void {}
  resume(): void {}
}

import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import type { BodyRecording } from './body.js'
import { channels } from './diagnostics.js'
import { fingerprint } from './fingerprint.js'
import {
  type Controller,
  type Dispatch,
  type DispatchOptions,
  type Handler,
  withHeaders,
} from './handler-api.js'
import { type AnyHeaders, type TokenHeaders, withTokenHeaders } from './headers.js'
import { SpeaksLegacyToo } from './legacy-handler.js'
import { mayRenewRejected, renewRejected, type TokenCache } from './token-cache.js'
import type { Token } from './types.js'
import { challengeAllowsRetry } from './www-authenticate.js'

/** Bytes of a swallowed 401 body drained (keeping the connection) before it is aborted instead. */
const maxSwallowBytes = 64 * 1024

/** How the request body can be sent a second time. */
export type Replay =
  /** null, a string or bytes: resend `options.body` as it is. */
  | 'as-is'
  /** A one-shot body recorded while it was sent. */
  | BodyRecording
  /** Not at all (or retries are off): a 401 goes to the caller. */
  | 'never'

export interface UnauthorizedHandlerOptions {
  dispatch: Dispatch
  /** The caller's options, with the body to send on the first attempt. */
  options: DispatchOptions
  /** The matched origin, normalised (no userinfo): what events name. */
  origin: string
  /** The caller's handler, new API. */
  handler: Handler
  tokens: TokenCache
  key: string
  headersFor: (token: Token) => TokenHeaders
  replay: Replay
}

/**
 * One logical request to a token-protected origin, over one or two attempts:
 * sends it with a token (waiting for one if none is cached), and on a 401 that a
 * new token may cure, swallows that response, renews the token and sends the
 * request once more. The caller sees one request: one `onRequestStart`, one
 * controller that always drives the live attempt, exactly one terminal callback.
 * It speaks both handler APIs to the dispatcher below (see SpeaksLegacyToo).
 */
export class UnauthorizedHandler extends SpeaksLegacyToo implements Handler {
  readonly #dispatch: Dispatch
  readonly #options: DispatchOptions
  readonly #origin: string
  readonly #handler: Handler
  readonly #tokens: TokenCache
  readonly #key: string
  readonly #headersFor: (token: Token) => TokenHeaders
  readonly #replay: Replay
  readonly #controller: CallerController
  /** The token the current attempt carries. */
  #token: Token | undefined
  #retried = false
  #callerStarted = false
  #swallowing = false
  #swallowedBytes = 0
  #abortedOversized = false
  #done = false

  constructor(options: UnauthorizedHandlerOptions) {
    super()
    this.#dispatch = options.dispatch
    this.#options = options.options
    this.#origin = options.origin
    this.#handler = options.handler
    this.#tokens = options.tokens
    this.#key = options.key
    this.#headersFor = options.headersFor
    this.#replay = options.replay
    this.#controller = new CallerController(this)
  }

  /**
   * Sends the request with `token` now (with `body` instead of the first one, on the
   * retry). Every attempt comes through here, and anything that goes wrong in it —
   * a header that cannot be built, a dispatcher that throws — ends the request
   * through #fail: one error path, exactly one terminal callback.
   */
  send(token: Token, body?: unknown): boolean {
    if (this.#done) return true
    this.#token = token
    try {
      const headers = withTokenHeaders(
        this.#options.headers as AnyHeaders,
        this.#headersFor(token),
        this.#origin,
      )
      return this.#dispatch(withHeaders(this.#options, headers, body), this)
    } catch (error) {
      this.#fail(error)
      return true
    }
  }

  /**
   * Sends the request once `token` arrives. The caller gets its controller at
   * once, so that an abort while the token is fetched ends the request now.
   * If no token can be had the request is not sent (fail closed).
   */
  sendWhen(token: Promise<Token>): boolean {
    this.#startCaller({})
    token.then(
      (value) => this.send(value),
      (error: unknown) => this.#fail(error),
    )
    return true
  }

  override onRequestStart(controller: Controller, context: unknown): void {
    if (this.#done) {
      // The caller gave up while this attempt waited for a connection.
      controller.abort(this.#controller.reason ?? new Error('Request aborted'))
      return
    }
    this.#controller.attach(controller)
    this.#startCaller(context)
  }

  override onRequestUpgrade(
    _controller: Controller,
    statusCode: number,
    headers: IncomingHttpHeaders,
    socket: Duplex,
  ): void {
    if (this.#done) return
    this.#done = true
    this.#handler.onRequestUpgrade?.(this.#controller, statusCode, headers, socket)
  }

  override onResponseStart(
    _controller: Controller,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    if (this.#done) return
    if (statusCode === 401 && this.#mayRetry(headers)) {
      this.#swallowing = true // the caller never sees this response
      return
    }
    this.#handler.onResponseStart?.(this.#controller, statusCode, headers, statusMessage)
  }

  override onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#done) return
    if (this.#swallowing) {
      this.#swallowedBytes += chunk.length
      if (this.#swallowedBytes > maxSwallowBytes && !this.#abortedOversized) {
        // Draining keeps the connection; a huge 401 body is not worth it.
        this.#abortedOversized = true
        controller.abort(new Error('Discarding an oversized 401 response body'))
      }
      return
    }
    this.#handler.onResponseData?.(this.#controller, chunk)
  }

  override onResponseEnd(_controller: Controller, trailers: IncomingHttpHeaders): void {
    if (this.#done) return
    this.#controller.detach()
    if (this.#swallowing) {
      this.#retry()
      return
    }
    this.#done = true
    try {
      this.#handler.onResponseEnd?.(this.#controller, trailers)
    } catch (error) {
      // A handler may throw here to turn the end into an error (undici's retry handler does
      // after a 5xx): undici then reports it through onResponseError, which must reach it.
      this.#done = false
      throw error
    }
  }

  override onResponseError(_controller: Controller, error: Error): void {
    if (this.#done) return
    this.#controller.detach()
    if (this.#swallowing && this.#abortedOversized && !this.#controller.aborted) {
      this.#retry() // our own abort of the 401 body, not the caller's
      return
    }
    this.#done = true
    this.#handler.onResponseError?.(this.#controller, error)
  }

  #mayRetry(headers: IncomingHttpHeaders): boolean {
    if (this.#retried || this.#token === undefined) return false
    const replay = this.#replay
    if (replay === 'never' || (replay !== 'as-is' && !replay.replayable)) return false
    // RFC 6750 §3.1: only an invalid (expired, revoked) token is cured by a new one.
    if (!challengeAllowsRetry(headers['www-authenticate'])) return false
    return mayRenewRejected(this.#tokens, this.#key, this.#token.accessToken)
  }

  #retry(): void {
    this.#swallowing = false
    this.#retried = true
    const rejected = (this.#token as Token).accessToken
    if (channels.retry.hasSubscribers) {
      channels.retry.publish({
        key: this.#key,
        origin: this.#origin,
        fingerprint: fingerprint(rejected),
      })
    }
    const replay = this.#replay
    const body = replay === 'as-is' || replay === 'never' ? this.#options.body : replay.replay()
    renewRejected(this.#tokens, this.#key, rejected).then(
      (token) => this.send(token, body),
      (error: unknown) => this.#fail(error),
    )
  }

  #startCaller(context: unknown): void {
    if (this.#callerStarted) return
    this.#callerStarted = true
    this.#handler.onRequestStart?.(this.#controller, context)
  }

  /** Ends the request with `error` without sending it (again). */
  #fail(error: unknown): void {
    if (this.#done) return
    this.#startCaller({})
    if (this.#done) return // aborted from onRequestStart
    this.#done = true
    const reason = error instanceof Error ? error : new Error(String(error))
    this.#handler.onResponseError?.(this.#controller, reason)
  }

  /**
   * @internal The caller aborted between attempts (no attempt is live to report
   * it through onResponseError): report it now.
   */
  callerAborted(reason: Error): void {
    if (this.#done || this.#controller.live) return
    this.#done = true
    this.#handler.onResponseError?.(this.#controller, reason)
  }
}

/**
 * The controller the caller holds for the whole logical request. It forwards to
 * the attempt on the wire; between attempts (token being fetched, retry waiting
 * for a connection) it remembers an abort and applies it when the next starts.
 */
class CallerController implements Controller {
  readonly #request: UnauthorizedHandler
  #attempt: Controller | undefined
  #live = false
  #aborted = false
  #paused = false
  #reason: Error | null = null

  constructor(request: UnauthorizedHandler) {
    this.#request = request
  }

  get live(): boolean {
    return this.#live
  }

  attach(attempt: Controller): void {
    this.#attempt = attempt
    this.#live = true
    if (this.#paused) attempt.pause()
  }

  detach(): void {
    this.#live = false
  }

  get aborted(): boolean {
    return this.#aborted
  }

  get paused(): boolean {
    return this.#paused
  }

  get reason(): Error | null {
    return this.#reason
  }

  get rawHeaders(): unknown {
    return this.#attempt?.rawHeaders
  }

  get rawTrailers(): unknown {
    return this.#attempt?.rawTrailers
  }

  abort(reason: Error): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason ?? new Error('Request aborted')
    if (this.#live) this.#attempt?.abort(this.#reason)
    else this.#request.callerAborted(this.#reason)
  }

  pause(): void {
    this.#paused = true
    if (this.#live) this.#attempt?.pause()
  }

  resume(): void {
    this.#paused = false
    if (this.#live) this.#attempt?.resume()
  }
}

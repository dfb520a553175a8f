import { AsyncResource } from 'node:async_hooks'
import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import { channels } from '../diagnostics.js'
import { fingerprint } from '../fingerprint.js'
import { challengeAllowsRetry, challengeError } from '../oauth/www-authenticate.js'
import type { Token } from '../types.js'
import { CallerController } from './controllers.js'
import { HeldResponse } from './held-response.js'
import { BothApis } from './legacy.js'
import { canReplay, firstBody, type ReplayPlan, replayBody } from './replay.js'
import { decorated, type RequestPolicy } from './request-policy.js'
import type { Controller, Dispatch, DispatchOptions, Handler } from './types.js'

/** Bytes of a swallowed 401 body drained (keeping the connection) before it is aborted instead. */
const maxSwallowBytes = 64 * 1024

/**
 * One logical request over one or two attempts. The caller sees one request: one
 * `onRequestStart`, one controller that always drives the live attempt, exactly one
 * terminal callback. Every attempt goes through #attempt, and everything that goes
 * wrong — no token, a header that cannot be built, a dispatcher that throws — ends
 * the request through #fail. On a 401 that a new token may cure, the response is
 * swallowed, the token renewed (the cache's 401 policy) and the request sent again.
 */
export class AccessTokenHandler implements Required<Handler> {
  readonly #policy: RequestPolicy
  readonly #dispatch: Dispatch
  /** The caller's options, with the body to send on the first attempt. */
  readonly #options: DispatchOptions
  readonly #caller: Handler
  /** The matched origin, normalised (no userinfo): what events name. */
  readonly #origin: string
  readonly #key: string
  readonly #plan: ReplayPlan
  readonly #controller = new CallerController((reason) => this.#abortedBetweenAttempts(reason))
  /** What is dispatched downstream: this handler, speaking the legacy API too. */
  readonly #downstream: BothApis = new BothApis(this)
  /** The token the current attempt carries. */
  #token: Token | undefined
  /** Renewed after a 401 already (at most once). */
  #retried = false
  /** Sent again with a server's new DPoP nonce already (at most once, besides the renewal). */
  #nonceRetried = false
  #callerStarted = false
  /** Why the response on the wire is being swallowed: the retry it leads to. */
  #swallowing: 'renewal' | 'nonce' | undefined
  #swallowedBytes = 0
  #abortedOversized = false
  /** A 400 held back until its body says whether it asks for a DPoP nonce. */
  #held: HeldResponse | undefined
  #done = false
  /**
   * The caller's async context, kept only while someone subscribes to `retry`: undici calls
   * a handler back in the context of whoever opened the connection, so the retry event (and
   * the renewal and attempt it leads to) would otherwise belong to another request's trace.
   */
  readonly #scope: AsyncResource | undefined

  constructor(
    policy: RequestPolicy,
    dispatch: Dispatch,
    options: DispatchOptions,
    caller: Handler,
    origin: string,
    key: string,
    plan: ReplayPlan,
  ) {
    this.#policy = policy
    this.#dispatch = dispatch
    const body = firstBody(plan, options.body)
    this.#options = body === options.body ? options : { ...options, body }
    this.#caller = caller
    this.#origin = origin
    this.#key = key
    this.#plan = plan
    this.#scope = channels.retry.hasSubscribers
      ? new AsyncResource('undici-access-token')
      : undefined
  }

  /** Sends now with `token`, or once the key's token arrives. */
  start(token: Token | undefined): boolean {
    if (token !== undefined) return this.#attempt(token)
    // The caller gets its controller at once, so an abort while the token is fetched ends it now.
    this.#startCaller({})
    this.#when(this.#policy.internals.load(this.#key))
    return true
  }

  onRequestStart(controller: Controller, context: unknown): void {
    if (this.#done) {
      // The caller gave up while this attempt waited for a connection.
      controller.abort(this.#controller.reason ?? new Error('Request aborted'))
      return
    }
    this.#controller.attach(controller)
    this.#startCaller(context)
  }

  onRequestUpgrade(
    _controller: Controller,
    statusCode: number,
    headers: IncomingHttpHeaders,
    socket: Duplex,
  ): void {
    if (this.#done) return
    this.#done = true
    this.#caller.onRequestUpgrade?.(this.#controller, statusCode, headers, socket)
  }

  onResponseStart(
    _controller: Controller,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    if (this.#done) return
    const { dpop } = this.#policy.internals
    const nonce = headers['dpop-nonce']
    if (dpop !== undefined && typeof nonce === 'string') dpop.rememberNonce(this.#origin, nonce)
    // The caller never sees a response that leads to a retry.
    if ((statusCode === 401 || statusCode === 400) && this.#mayRetryWithNonce(headers)) {
      this.#swallowing = 'nonce'
      return
    }
    if (statusCode === 401 && this.#mayRetry(headers)) {
      this.#swallowing = 'renewal'
      return
    }
    if (HeldResponse.worthHolding(statusCode, headers) && this.#mayRetryWithNonce(headers, true)) {
      this.#held = new HeldResponse(statusCode, headers, statusMessage)
      return
    }
    this.#caller.onResponseStart?.(this.#controller, statusCode, headers, statusMessage)
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#done) return
    if (this.#swallowing !== undefined) {
      this.#swallowedBytes += chunk.length
      if (this.#swallowedBytes > maxSwallowBytes && !this.#abortedOversized) {
        // Draining keeps the connection; a huge 401 body is not worth it.
        this.#abortedOversized = true
        controller.abort(new Error('Discarding an oversized 401 response body'))
      }
      return
    }
    if (this.#held !== undefined) {
      if (this.#held.add(chunk)) return
      this.#releaseHeld() // too large for an error object: the caller's, as it came
      return
    }
    this.#caller.onResponseData?.(this.#controller, chunk)
  }

  onResponseEnd(_controller: Controller, trailers: IncomingHttpHeaders): void {
    if (this.#done) return
    this.#controller.detach()
    if (this.#held?.saysUseDpopNonce()) {
      this.#held = undefined
      this.#swallowing = 'nonce'
    }
    if (this.#swallowing !== undefined) {
      this.#retry()
      return
    }
    this.#releaseHeld()
    this.#done = true
    try {
      this.#caller.onResponseEnd?.(this.#controller, trailers)
    } catch (error) {
      // A handler may throw here to turn the end into an error (undici's retry handler does
      // after a 5xx): undici then reports it through onResponseError, which must reach it.
      this.#done = false
      throw error
    }
  }

  onResponseError(_controller: Controller, error: Error): void {
    if (this.#done) return
    this.#controller.detach()
    if (this.#swallowing !== undefined && this.#abortedOversized && !this.#controller.aborted) {
      this.#retry() // our own abort of the 401 body, not the caller's
      return
    }
    this.#held = undefined // a response that broke off (or was aborted) before it was the caller's
    this.#done = true
    this.#caller.onResponseError?.(this.#controller, error)
  }

  /** The held response, if any, goes to the caller after all. */
  #releaseHeld(): void {
    const held = this.#held
    if (held === undefined) return
    this.#held = undefined
    held.release(this.#caller, this.#controller)
  }

  /** One attempt with `token` (and `body` instead of the first one, on the retry). */
  #attempt(token: Token, body?: unknown): boolean {
    if (this.#done) return true
    this.#token = token
    this.#swallowedBytes = 0
    this.#abortedOversized = false
    try {
      const options = decorated(this.#policy, this.#options, token, this.#origin, body)
      return this.#dispatch(options, this.#downstream)
    } catch (error) {
      this.#fail(error)
      return true
    }
  }

  /** An attempt once `token` arrives; none arriving ends the request unsent (fail closed). */
  #when(token: Promise<Token>, body?: unknown): void {
    token.then(
      (value) => this.#attempt(value, body),
      (error: unknown) => this.#fail(error),
    )
  }

  #mayRetry(headers: IncomingHttpHeaders): boolean {
    if (this.#retried || this.#token === undefined || !canReplay(this.#plan)) return false
    // RFC 6750 §3.1: only an invalid (expired, revoked) token is cured by a new one.
    if (!challengeAllowsRetry(headers['www-authenticate'])) return false
    return this.#policy.internals.mayRetryAfter401(this.#key, this.#token.accessToken)
  }

  /**
   * RFC 9449 §9: a resource server that wants a (new) nonce answers 401 (or 400) with a
   * DPoP challenge `error="use_dpop_nonce"` and the nonce in `DPoP-Nonce`: the same token
   * is sent again with it, not invalidated. `inBody`: the error may be in a 400's JSON
   * body instead, which is read before deciding (HeldResponse).
   */
  #mayRetryWithNonce(headers: IncomingHttpHeaders, inBody = false): boolean {
    if (this.#nonceRetried || this.#token?.dpopThumbprint === undefined) return false
    if (typeof headers['dpop-nonce'] !== 'string' || !canReplay(this.#plan)) return false
    return inBody || challengeError(headers['www-authenticate'], 'dpop') === 'use_dpop_nonce'
  }

  #retry(): void {
    const token = this.#token as Token
    const body = replayBody(this.#plan, this.#options.body)
    if (this.#swallowing === 'nonce') {
      this.#swallowing = undefined
      this.#nonceRetried = true
      this.#attempt(token, body)
      return
    }
    this.#swallowing = undefined
    this.#retried = true
    if (this.#scope === undefined) this.#renew(token.accessToken, body)
    else this.#scope.runInAsyncScope(() => this.#renew(token.accessToken, body))
  }

  /** The retry after a 401 for `rejected`: published, then sent with the token after it. */
  #renew(rejected: string, body: unknown): void {
    if (channels.retry.hasSubscribers) {
      channels.retry.publish({
        key: this.#key,
        origin: this.#origin,
        fingerprint: fingerprint(rejected),
      })
    }
    this.#when(this.#policy.internals.tokenAfter401(this.#key, rejected), body)
  }

  #startCaller(context: unknown): void {
    if (this.#callerStarted) return
    this.#callerStarted = true
    this.#caller.onRequestStart?.(this.#controller, context)
  }

  /** The one way a request ends without (another) attempt: `error` to the caller. */
  #fail(error: unknown): void {
    if (this.#done) return
    this.#startCaller({})
    if (this.#done) return // aborted from onRequestStart
    this.#done = true
    const reason = error instanceof Error ? error : new Error(String(error))
    this.#caller.onResponseError?.(this.#controller, reason)
  }

  /** The caller aborted while no attempt was live to report it: report it now. */
  #abortedBetweenAttempts(reason: Error): void {
    if (this.#done) return
    this.#done = true
    this.#caller.onResponseError?.(this.#controller, reason)
  }
}

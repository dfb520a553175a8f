import {
  channels,
  type FetchStartMessage,
  type FetchTraceMessage,
  fetchTracing,
  grantOf,
  summarize,
  traceFetch,
} from '../diagnostics.js'
import type { DPoPKey } from '../dpop/signer.js'
import { TokenRequestError } from '../errors.js'
import { fingerprint } from '../fingerprint.js'
import { toToken } from '../token.js'
import type { FetchToken, Token } from '../types.js'
import { type BackoffOptions, FailureBackoff } from './backoff.js'
import { runAsTokenFetch } from './token-fetch-context.js'

export type FetchReason = FetchStartMessage['reason']

export interface FetcherOptions {
  fetchToken: FetchToken
  timeout: number
  defaultLifetime: number
  backoff: BackoffOptions | false | undefined
  /** Proofs for token requests, and the key fetched tokens are bound to. */
  dpop: DPoPKey | undefined
  now: () => number
}

/**
 * One token fetch at a time per call: bounded by `timeout` (even for a source that
 * ignores its signal), validated into a Token, timed (the latency estimate that
 * moves refresh-ahead earlier), spaced after failures (backoff), and published on
 * the `fetch:*` channels and traced on the `undici-access-token:fetch` TracingChannel.
 * Knows nothing of caching or stores.
 */
export class TokenFetcher {
  readonly #fetchToken: FetchToken
  readonly #timeout: number
  readonly #defaultLifetime: number
  readonly #backoff: FailureBackoff | undefined
  readonly #dpop: DPoPKey | undefined
  readonly #now: () => number
  /** The source's OAuth grant, for traces; undefined for a custom source. */
  readonly #grant: string | undefined
  /** Smoothed duration of token fetches (ms). */
  #latency = 0

  constructor(options: FetcherOptions) {
    this.#fetchToken = options.fetchToken
    this.#timeout = options.timeout
    this.#defaultLifetime = options.defaultLifetime
    this.#backoff = options.backoff === false ? undefined : new FailureBackoff(options.backoff)
    this.#dpop = options.dpop
    this.#now = options.now
    this.#grant = grantOf(options.fetchToken)
  }

  /** Smoothed duration of recent fetches in ms (0 before the first). */
  get latency(): number {
    return this.#latency
  }

  /** The last error while `key` backs off after failures, else undefined. */
  blocked(key: string): TokenRequestError | undefined {
    return this.#backoff?.blocked(key, this.#now())
  }

  /** When `key` may be fetched again after a failure (cache clock), or undefined. */
  retryAt(key: string): number | undefined {
    return this.#backoff?.until(key)
  }

  clearBackoff(): void {
    this.#backoff?.clear()
  }

  fetch(key: string, reason: FetchReason): Promise<Token> {
    if (channels.fetchStart.hasSubscribers) channels.fetchStart.publish({ key, reason })
    if (!fetchTracing.hasSubscribers) return this.#fetch(key, undefined)
    const grant = this.#grant
    const trace: FetchTraceMessage = grant === undefined ? { key, reason } : { key, reason, grant }
    return traceFetch(trace, () => this.#fetch(key, trace))
  }

  /** One fetch; `trace`, when traced, gets its outcome before the promise settles. */
  async #fetch(key: string, trace: FetchTraceMessage | undefined): Promise<Token> {
    const started = performance.now()
    const controller = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new TokenRequestError(
          `Token request for key "${key}" timed out after ${this.#timeout} ms`,
        )
        controller.abort(error)
        reject(error)
      }, this.#timeout)
    })
    try {
      // The race keeps the timeout even for a fetchToken that ignores its signal.
      const response = await Promise.race([
        runAsTokenFetch(() =>
          this.#fetchToken({ key, signal: controller.signal, dpop: this.#dpop }),
        ),
        timedOut,
      ])
      const token = bound(toToken(response, this.#now(), this.#defaultLifetime), this.#dpop)
      const durationMs = performance.now() - started
      this.#latency = this.#latency === 0 ? durationMs : 0.7 * this.#latency + 0.3 * durationMs
      this.#backoff?.succeeded(key)
      if (channels.fetchSuccess.hasSubscribers || trace !== undefined) {
        const success = {
          key,
          durationMs,
          fingerprint: fingerprint(token.accessToken),
          expiresAt: token.expiresAt,
          lifetimeMs: token.expiresAt - token.obtainedAt,
        }
        if (trace !== undefined) Object.assign(trace, success)
        if (channels.fetchSuccess.hasSubscribers) channels.fetchSuccess.publish(success)
      }
      return token
    } catch (caught) {
      const durationMs = performance.now() - started
      if (trace !== undefined) trace.durationMs = durationMs
      throw this.#failed(key, caught, durationMs)
    } finally {
      clearTimeout(timer)
    }
  }

  #failed(key: string, caught: unknown, durationMs: number): TokenRequestError {
    const error =
      caught instanceof TokenRequestError
        ? caught
        : new TokenRequestError(`fetchToken for key "${key}" failed`, { cause: caught })
    if (channels.fetchError.hasSubscribers) {
      channels.fetchError.publish({ key, durationMs, error: summarize(error) })
    }
    if (this.#backoff !== undefined) {
      const { delay, count } = this.#backoff.failed(key, error, this.#now())
      if (channels.backoff.hasSubscribers) {
        channels.backoff.publish({ key, delayMs: delay, failures: count, error: summarize(error) })
      }
    }
    return error
  }
}

/**
 * With DPoP, a token the server bound to the key (`token_type` DPoP, RFC 9449 §5) records
 * the key's thumbprint; any other answer is refused while DPoP is `required` — a Bearer
 * token where a bound one was asked for would be sent unprotected — or used as a Bearer.
 */
function bound(token: Token, dpop: DPoPKey | undefined): Token {
  if (dpop === undefined) return token
  if (token.tokenType.toLowerCase() === 'dpop') {
    token.tokenType = 'DPoP'
    token.dpopThumbprint = dpop.thumbprint
  } else if (dpop.required) {
    throw new TokenRequestError(
      `DPoP is required, but the token endpoint answered token_type ${JSON.stringify(token.tokenType)}: the token is not bound to the key, so it is not used`,
    )
  }
  return token
}

import type { Controller, Handler } from './types.js'

/**
 * What every controller here keeps — aborted or not, paused or not, and why —
 * so that each subclass says only what abort, pause and resume do.
 */
export abstract class ControllerState implements Controller {
  #aborted = false
  #paused = false
  #reason: Error | null = null

  get aborted(): boolean {
    return this.#aborted
  }

  get paused(): boolean {
    return this.#paused
  }

  get reason(): Error | null {
    return this.#reason
  }

  abort(reason: Error): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason ?? new Error('Request aborted')
    this.onAbort(this.#reason)
  }

  pause(): void {
    this.#paused = true
    this.onPause()
  }

  resume(): void {
    if (!this.#paused) return
    this.#paused = false
    this.onResume()
  }

  protected abstract onAbort(reason: Error): void
  protected onPause(): void {}
  protected onResume(): void {}
}

/**
 * The controller the caller holds for the whole logical request, over one or two
 * attempts. It forwards to the attempt on the wire; between attempts (token being
 * fetched, retry waiting for a connection) it remembers a pause, and reports an
 * abort through `abortedBetweenAttempts` — no attempt is live to report it.
 */
export class CallerController extends ControllerState {
  readonly #abortedBetweenAttempts: (reason: Error) => void
  #attempt: Controller | undefined
  #live = false

  constructor(abortedBetweenAttempts: (reason: Error) => void) {
    super()
    this.#abortedBetweenAttempts = abortedBetweenAttempts
  }

  /** An attempt is on the wire. */
  get live(): boolean {
    return this.#live
  }

  get rawHeaders(): unknown {
    return this.#attempt?.rawHeaders
  }

  get rawTrailers(): unknown {
    return this.#attempt?.rawTrailers
  }

  attach(attempt: Controller): void {
    this.#attempt = attempt
    this.#live = true
    if (this.paused) attempt.pause()
  }

  detach(): void {
    this.#live = false
  }

  protected onAbort(reason: Error): void {
    if (this.#live) this.#attempt?.abort(reason)
    else this.#abortedBetweenAttempts(reason)
  }

  protected override onPause(): void {
    if (this.#live) this.#attempt?.pause()
  }

  protected override onResume(): void {
    if (this.#live) this.#attempt?.resume()
  }
}

/** The controller of a request that is never sent: nothing to pause or abort. */
class RefusedController extends ControllerState {
  protected onAbort(): void {}
}

/** Ends a request that is never sent, through the caller's handler: start, then the error. */
export function refuse(caller: Handler, error: unknown): boolean {
  const controller = new RefusedController()
  caller.onRequestStart?.(controller, {})
  caller.onResponseError?.(controller, error instanceof Error ? error : new Error(String(error)))
  return true
}

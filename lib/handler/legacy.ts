import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import { ControllerState } from './controllers.js'
import type { Controller, Handler, LegacyHandler } from './types.js'

type Headers = IncomingHttpHeaders

/**
 * Presents a legacy handler (`onConnect`/`onHeaders`/`onData`/`onComplete`/
 * `onError`, as Node ≤ 24's built-in fetch sends) through the new API, so that
 * everything downstream — undici 8 accepts nothing else — sees one contract.
 * Its legacy methods hand the callbacks straight to the handler, for a
 * dispatcher that only speaks that API (Node 20/22's bundled undici 6).
 */
class LegacyHandlerAdapter implements Handler, LegacyHandler {
  readonly #handler: LegacyHandler

  constructor(handler: LegacyHandler) {
    this.#handler = handler
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.#handler.onConnect?.((reason) => controller.abort(reason ?? new Error('aborted')), context)
  }

  onRequestUpgrade(
    controller: Controller,
    statusCode: number,
    headers: IncomingHttpHeaders,
    socket: Duplex,
  ): void {
    this.#handler.onUpgrade?.(statusCode, rawHeaders(controller.rawHeaders, headers), socket)
  }

  onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    this.#handler.onResponseStarted?.()
    const resume = (): void => controller.resume()
    const raw = rawHeaders(controller.rawHeaders, headers)
    if (this.#handler.onHeaders?.(statusCode, raw, resume, statusMessage) === false) {
      controller.pause()
    }
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#handler.onData?.(chunk) === false) controller.pause()
  }

  onResponseEnd(controller: Controller, trailers: IncomingHttpHeaders): void {
    this.#handler.onComplete?.(rawHeaders(controller.rawTrailers, trailers))
  }

  onResponseError(_controller: Controller, error: Error): void {
    if (typeof this.#handler.onError !== 'function') throw error
    this.#handler.onError(error)
  }

  onConnect(abort: (reason?: Error) => void, context?: unknown): void {
    this.#handler.onConnect?.(abort, context)
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[], socket: Duplex): void {
    this.#handler.onUpgrade?.(statusCode, rawHeaders, socket)
  }

  onResponseStarted(): void {
    this.#handler.onResponseStarted?.()
  }

  onHeaders(
    statusCode: number,
    rawHeaders: Buffer[],
    resume: () => void,
    statusText?: string,
  ): boolean | undefined {
    return this.#handler.onHeaders?.(statusCode, rawHeaders, resume, statusText)
  }

  onData(chunk: Buffer): boolean | undefined {
    return this.#handler.onData?.(chunk)
  }

  onComplete(rawTrailers: Buffer[] | null): void {
    this.#handler.onComplete?.(rawTrailers)
  }

  onError(error: Error): void {
    if (typeof this.#handler.onError !== 'function') throw error
    this.#handler.onError(error)
  }
}

/**
 * A new-API handler that speaks the legacy API too, by delegation: the handlers
 * this package sends downstream are wrapped in one, so they work whichever API the
 * dispatcher below speaks — undici 7 and 8 call the new methods; Node 20/22's
 * bundled undici 6 (what `getGlobalDispatcher()` returns there once built-in fetch
 * has installed its own dispatcher) calls the legacy ones, translated here.
 */
export class BothApis implements Handler, LegacyHandler {
  readonly #handler: Required<Handler>
  /** The legacy attempt's controller (an attempt may fail before it connects). */
  #legacy: LegacyController | undefined

  constructor(handler: Required<Handler>) {
    this.#handler = handler
  }

  // The new API: straight through.
  onRequestStart(controller: Controller, context: unknown): void {
    this.#handler.onRequestStart(controller, context)
  }

  onRequestUpgrade(c: Controller, status: number, headers: Headers, socket: Duplex): void {
    this.#handler.onRequestUpgrade(c, status, headers, socket)
  }

  onResponseStart(c: Controller, status: number, headers: Headers, message?: string): void {
    this.#handler.onResponseStart(c, status, headers, message)
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    this.#handler.onResponseData(controller, chunk)
  }

  onResponseEnd(controller: Controller, trailers: Headers): void {
    this.#handler.onResponseEnd(controller, trailers)
  }

  onResponseError(controller: Controller, error: Error): void {
    this.#handler.onResponseError(controller, error)
  }

  // The legacy API: translated, over a controller made of its callbacks.
  #controller(): LegacyController {
    this.#legacy ??= new LegacyController(() => {})
    return this.#legacy
  }

  onConnect(abort: (reason?: Error) => void, context?: unknown): void {
    this.#legacy = new LegacyController(abort)
    this.#handler.onRequestStart(this.#legacy, context)
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[], socket: Duplex): void {
    const controller = this.#controller()
    controller.rawHeaders = rawHeaders
    this.#handler.onRequestUpgrade(controller, statusCode, parseRawHeaders(rawHeaders), socket)
  }

  onHeaders(
    statusCode: number,
    rawHeaders: Buffer[],
    resume: () => void,
    statusText?: string,
  ): boolean {
    const controller = this.#controller()
    controller.rawHeaders = rawHeaders
    controller.resumeWith(resume)
    this.#handler.onResponseStart(controller, statusCode, parseRawHeaders(rawHeaders), statusText)
    return !controller.paused
  }

  onData(chunk: Buffer): boolean {
    const controller = this.#controller()
    this.#handler.onResponseData(controller, chunk)
    return !controller.paused
  }

  onComplete(rawTrailers: Buffer[] | null): void {
    const controller = this.#controller()
    controller.rawTrailers = rawTrailers ?? []
    this.#handler.onResponseEnd(controller, parseRawHeaders(rawTrailers))
  }

  onError(error: Error): void {
    this.#handler.onResponseError(this.#controller(), error)
  }
}

/** A new-API controller over the legacy callbacks: `abort` from onConnect, `resume` from onHeaders. */
class LegacyController extends ControllerState {
  readonly #abort: (reason?: Error) => void
  #resume: (() => void) | undefined
  rawHeaders: unknown
  rawTrailers: unknown

  constructor(abort: (reason?: Error) => void) {
    super()
    this.#abort = abort
  }

  resumeWith(resume: () => void): void {
    this.#resume = resume
  }

  protected onAbort(reason: Error): void {
    this.#abort(reason)
  }

  protected override onResume(): void {
    this.#resume?.()
  }
}

/** Raw `[name, value, …]` headers as an object: lower-case names, repeated ones as arrays. */
function parseRawHeaders(raw: readonly unknown[] | null | undefined): IncomingHttpHeaders {
  const headers: Record<string, string | string[]> = {}
  if (!raw) return headers
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = String(raw[i]).toLowerCase()
    const value = String(raw[i + 1])
    const seen = headers[name]
    if (seen === undefined) headers[name] = value
    else if (Array.isArray(seen)) seen.push(value)
    else headers[name] = [seen, value]
  }
  return headers as IncomingHttpHeaders
}

/** The raw `[name, value, …]` Buffers legacy handlers expect. */
function rawHeaders(raw: unknown, parsed: IncomingHttpHeaders | null | undefined): Buffer[] {
  if (Array.isArray(raw)) {
    // HTTP/1.1 hands Buffers already: pass them on without a copy.
    if (raw.every((item) => Buffer.isBuffer(item))) return raw as Buffer[]
    return raw.map((item) => (Buffer.isBuffer(item) ? item : Buffer.from(String(item), 'latin1')))
  }
  const out: Buffer[] = []
  for (const [name, value] of Object.entries(parsed ?? {})) {
    if (value === undefined) continue
    for (const item of Array.isArray(value) ? value : [value]) {
      out.push(Buffer.from(name, 'latin1'), Buffer.from(String(item), 'latin1'))
    }
  }
  return out
}

/**
 * A handler downstream can call with the new API, whichever API `handler` speaks
 * (a legacy one is adapted, and keeps its legacy methods too).
 */
export function toNewApi(handler: Handler & LegacyHandler): Handler & LegacyHandler {
  return typeof handler.onRequestStart === 'function' ? handler : new LegacyHandlerAdapter(handler)
}

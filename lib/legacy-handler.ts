import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Controller, Handler, LegacyHandler } from './handler-api.js'

/**
 * Presents a legacy handler (`onConnect`/`onHeaders`/`onData`/`onComplete`/
 * `onError`, as Node ≤ 24's built-in fetch sends) through the new API, so that
 * everything downstream — undici 8 accepts nothing else — sees one contract.
 * Its legacy methods hand the callbacks straight to the handler, for a
 * dispatcher that only speaks that API (Node 20/22's bundled undici 6).
 */
export class LegacyHandlerAdapter implements Handler, LegacyHandler {
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
 * The legacy API on top of a new-API handler. The handlers this package sends
 * downstream extend it, so they work whichever API the dispatcher below speaks:
 * undici 7 and 8 call the new methods; Node 20/22's bundled undici 6 — what
 * `getGlobalDispatcher()` returns there once built-in fetch has installed its
 * own dispatcher — calls these.
 */
export abstract class SpeaksLegacyToo implements LegacyHandler {
  #legacy: LegacyController | undefined

  abstract onRequestStart(controller: Controller, context: unknown): void
  abstract onRequestUpgrade(
    controller: Controller,
    statusCode: number,
    headers: IncomingHttpHeaders,
    socket: Duplex,
  ): void
  abstract onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void
  abstract onResponseData(controller: Controller, chunk: Buffer): void
  abstract onResponseEnd(controller: Controller, trailers: IncomingHttpHeaders): void
  abstract onResponseError(controller: Controller, error: Error): void

  /** The current attempt's controller (an attempt may fail before it connects). */
  #controller(): LegacyController {
    this.#legacy ??= new LegacyController(() => {})
    return this.#legacy
  }

  onConnect(abort: (reason?: Error) => void, context?: unknown): void {
    this.#legacy = new LegacyController(abort)
    this.onRequestStart(this.#legacy, context)
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[], socket: Duplex): void {
    const controller = this.#controller()
    controller.rawHeaders = rawHeaders
    this.onRequestUpgrade(controller, statusCode, parseRawHeaders(rawHeaders), socket)
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
    this.onResponseStart(controller, statusCode, parseRawHeaders(rawHeaders), statusText)
    return !controller.paused
  }

  onData(chunk: Buffer): boolean {
    const controller = this.#controller()
    this.onResponseData(controller, chunk)
    return !controller.paused
  }

  onComplete(rawTrailers: Buffer[] | null): void {
    const controller = this.#controller()
    controller.rawTrailers = rawTrailers ?? []
    this.onResponseEnd(controller, parseRawHeaders(rawTrailers))
  }

  onError(error: Error): void {
    this.onResponseError(this.#controller(), error)
  }
}

/** A new-API controller over the legacy callbacks: `abort` from onConnect, `resume` from onHeaders. */
class LegacyController implements Controller {
  readonly #abort: (reason?: Error) => void
  #resume: (() => void) | undefined
  #aborted = false
  #paused = false
  #reason: Error | null = null
  rawHeaders: unknown
  rawTrailers: unknown

  constructor(abort: (reason?: Error) => void) {
    this.#abort = abort
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

  resumeWith(resume: () => void): void {
    this.#resume = resume
  }

  abort(reason: Error): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    this.#abort(reason)
  }

  pause(): void {
    this.#paused = true
  }

  resume(): void {
    if (!this.#paused) return
    this.#paused = false
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

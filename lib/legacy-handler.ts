import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Controller, Handler, LegacyHandler } from './handler-api.js'

/**
 * Presents a legacy handler (`onConnect`/`onHeaders`/`onData`/`onComplete`/
 * `onError`, as Node ≤ 24's built-in fetch sends) through the new API, so that
 * everything downstream — undici 8 accepts nothing else — sees one contract.
 */
export class LegacyHandlerAdapter implements Handler {
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
}

/** The raw `[name, value, …]` Buffers legacy handlers expect. */
function rawHeaders(raw: unknown, parsed: IncomingHttpHeaders | null | undefined): Buffer[] {
  if (Array.isArray(raw)) {
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

/** A handler downstream can call with the new API, whichever API `handler` speaks. */
export function toNewApi(handler: Handler & LegacyHandler): Handler {
  return typeof handler.onRequestStart === 'function' ? handler : new LegacyHandlerAdapter(handler)
}

import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'

/**
 * The two handler contracts undici has used, typed here once so that the code
 * does not depend on one undici version's declarations (7 and 8 differ, e.g. in
 * `onBodySent`).
 */

/** What a response callback gets to pause, resume or abort the request. */
export interface Controller {
  readonly aborted: boolean
  readonly paused: boolean
  readonly reason: Error | null
  rawHeaders?: unknown
  rawTrailers?: unknown
  abort(reason: Error): void
  pause(): void
  resume(): void
}

/** undici's handler API since 7 (`onRequestStart` …), the only one undici 8 accepts. */
export interface Handler {
  onRequestStart?(controller: Controller, context: unknown): void
  onRequestUpgrade?(
    controller: Controller,
    statusCode: number,
    headers: IncomingHttpHeaders,
    socket: Duplex,
  ): void
  onResponseStart?(
    controller: Controller,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void
  onResponseData?(controller: Controller, chunk: Buffer): void
  onResponseEnd?(controller: Controller, trailers: IncomingHttpHeaders): void
  onResponseError?(controller: Controller, error: Error): void
}

/** The legacy API (`onConnect` …) that Node ≤ 24's built-in fetch still sends. */
export interface LegacyHandler {
  onConnect?(abort: (reason?: Error) => void, context?: unknown): void
  onUpgrade?(statusCode: number, rawHeaders: Buffer[], socket: Duplex): void
  onResponseStarted?(): void
  onHeaders?(
    statusCode: number,
    rawHeaders: Buffer[],
    resume: () => void,
    statusText?: string,
  ): boolean | undefined
  onData?(chunk: Buffer): boolean | undefined
  onComplete?(rawTrailers: Buffer[] | null): void
  onError?(error: Error): void
}

export type AnyHandler = Handler & LegacyHandler

/** Options as an interceptor receives them (only the fields this package reads). */
export interface DispatchOptions {
  origin?: string | URL
  path: string
  method: string
  headers?: unknown
  body?: unknown
  upgrade?: string | boolean | null
  [other: string | symbol]: unknown
}

export type Dispatch = (options: DispatchOptions, handler: Handler) => boolean

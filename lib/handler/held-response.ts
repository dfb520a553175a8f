import type { IncomingHttpHeaders } from 'node:http'
import type { Controller, Handler } from './types.js'

/** Bytes of a 400 body held back to read its OAuth error: an error object is far smaller. */
const maxHeldBytes = 16 * 1024

/**
 * A response held back from the caller until its body says whether it leads to a retry:
 * a resource server's 400 whose JSON body is `{"error":"use_dpop_nonce"}` (DESIGN, DPoP;
 * RFC 9449 §9 names the challenge, and some servers put the error in the body as at the
 * token endpoint, §8). Anything else is handed to the caller as it came, in order.
 */
export class HeldResponse {
  readonly #statusCode: number
  readonly #headers: IncomingHttpHeaders
  readonly #statusMessage: string | undefined
  readonly #chunks: Buffer[] = []
  #bytes = 0

  constructor(statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string) {
    this.#statusCode = statusCode
    this.#headers = headers
    this.#statusMessage = statusMessage
  }

  /** A 400 that may carry the nonce error in a JSON body, worth holding. */
  static worthHolding(statusCode: number, headers: IncomingHttpHeaders): boolean {
    if (statusCode !== 400) return false
    const type = headers['content-type']
    return typeof type === 'string' && /^application\/(?:[\w.+-]*\+)?json\b/i.test(type)
  }

  /** Keeps `chunk`; false once the body is larger than any error object worth reading. */
  add(chunk: Buffer): boolean {
    this.#chunks.push(chunk)
    this.#bytes += chunk.length
    return this.#bytes <= maxHeldBytes
  }

  /** Whether the whole body is a JSON object whose `error` is `use_dpop_nonce`. */
  saysUseDpopNonce(): boolean {
    try {
      const body: unknown = JSON.parse(Buffer.concat(this.#chunks, this.#bytes).toString('utf8'))
      return (
        typeof body === 'object' &&
        body !== null &&
        (body as { error?: unknown }).error === 'use_dpop_nonce'
      )
    } catch {
      return false
    }
  }

  /** Hands the response so far to `caller`: its start, then every chunk held. */
  release(caller: Handler, controller: Controller): void {
    caller.onResponseStart?.(controller, this.#statusCode, this.#headers, this.#statusMessage)
    for (const chunk of this.#chunks) caller.onResponseData?.(controller, chunk)
    this.#chunks.length = 0
  }
}

import stream from 'node:stream'

/**
 * Request bodies and the retry after a 401:
 * - `null`, strings, Buffers, typed arrays and ArrayBuffers can be sent again as they are;
 * - one-shot bodies (streams, async iterables, the async generator fetch sends)
 *   are recorded as undici reads them, up to a cap, and replayed from the record;
 * - anything else (FormData, Blob, a stream read already) is sent once.
 */
export function isResendable(body: unknown): boolean {
  return (
    body === null ||
    body === undefined ||
    typeof body === 'string' ||
    ArrayBuffer.isView(body) ||
    body instanceof ArrayBuffer
  )
}

/** A one-shot body recorded while it is sent, so that it can be sent again. */
export class BodyRecording {
  /** Send this instead of the original body: it yields the same chunks. */
  readonly body: AsyncGenerator<unknown>
  #chunks: Buffer[] | undefined = []
  #size = 0
  #complete = false

  constructor(source: AsyncIterable<unknown>, maxBytes: number) {
    this.body = this.#record(source, maxBytes)
  }

  /** True when the body was sent in full and was not larger than the cap. */
  get replayable(): boolean {
    return this.#complete && this.#chunks !== undefined
  }

  /** The recorded bytes; only when `replayable`. */
  replay(): Buffer {
    return Buffer.concat(this.#chunks ?? [], this.#size)
  }

  async *#record(source: AsyncIterable<unknown>, maxBytes: number): AsyncGenerator<unknown> {
    for await (const chunk of source) {
      if (this.#chunks !== undefined) {
        const bytes = toBytes(chunk)
        this.#size += bytes.byteLength
        // Copy: a producer may reuse its buffer once it has yielded it.
        if (this.#size <= maxBytes) this.#chunks.push(Buffer.from(bytes))
        else this.#chunks = undefined
      }
      yield chunk
    }
    this.#complete = true
  }
}

/** A recording of `body`, or undefined when it cannot be recorded from its start. */
export function recordBody(body: unknown, maxBytes: number): BodyRecording | undefined {
  if (typeof body !== 'object' || body === null || !(Symbol.asyncIterator in body)) return undefined
  if (
    ('pipe' in body || 'getReader' in body) &&
    (stream as unknown as { isDisturbed(s: unknown): boolean }).isDisturbed(body)
  ) {
    return undefined
  }
  return new BodyRecording(body as AsyncIterable<unknown>, maxBytes)
}

function toBytes(chunk: unknown): Uint8Array {
  if (typeof chunk === 'string') return Buffer.from(chunk)
  if (ArrayBuffer.isView(chunk)) {
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  }
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk)
  throw new TypeError('Request body chunks must be strings or bytes')
}

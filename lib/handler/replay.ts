import stream from 'node:stream'

/**
 * How a request body can be sent a second time, after a 401:
 * - `resend`: `null`, strings, Buffers, typed arrays and ArrayBuffers, as they are;
 * - `recorded`: one-shot bodies (streams, async iterables, the async generator fetch
 *   sends), recorded as undici reads them, up to a cap, and replayed from the record;
 * - `none`: anything else (FormData, Blob, a stream read already), or retries off —
 *   a 401 goes to the caller.
 */
export type ReplayPlan =
  | { readonly kind: 'none' }
  | { readonly kind: 'resend' }
  | { readonly kind: 'recorded'; readonly recording: BodyRecording }

const none: ReplayPlan = { kind: 'none' }
const resend: ReplayPlan = { kind: 'resend' }

/** The plan for `body`; `maxBytes` undefined means no retry at all. */
export function planReplay(body: unknown, maxBytes: number | undefined): ReplayPlan {
  if (maxBytes === undefined) return none
  if (isResendable(body)) return resend
  const recording = recordBody(body, maxBytes)
  return recording === undefined ? none : { kind: 'recorded', recording }
}

/** The body to send on the first attempt: a recorded one goes through its recorder. */
export function firstBody(plan: ReplayPlan, body: unknown): unknown {
  return plan.kind === 'recorded' ? plan.recording.body : body
}

/** Whether the body can be sent again now (a recording must be complete and within the cap). */
export function canReplay(plan: ReplayPlan): boolean {
  return plan.kind === 'resend' || (plan.kind === 'recorded' && plan.recording.replayable)
}

/** The body for the second attempt; only when `canReplay`. */
export function replayBody(plan: ReplayPlan, body: unknown): unknown {
  return plan.kind === 'recorded' ? plan.recording.replay() : body
}

function isResendable(body: unknown): boolean {
  return (
    body === null ||
    body === undefined ||
    typeof body === 'string' ||
    ArrayBuffer.isView(body) ||
    body instanceof ArrayBuffer
  )
}

/** A one-shot body recorded while it is sent, so that it can be sent again. */
class BodyRecording {
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
function recordBody(body: unknown, maxBytes: number): BodyRecording | undefined {
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

// @ts-check
// Dispatch handlers (undici's new handler API) and a downstream dispatch, without sockets.
// Plain objects: nothing here loads undici, so any undici major can be handed them.

/**
 * @typedef {import('undici').Dispatcher.DispatchController} DispatchController
 * @typedef {import('undici').Dispatcher.DispatchHandler} DispatchHandler
 */

/**
 * @typedef {object} RecordingHandler
 * @property {string[]} calls  `start`, `status <code>`, `data` (once a run of chunks), `end`,
 *   `error <name>`; each with the `prefix` given
 * @property {DispatchHandler} handler  what to dispatch with
 * @property {Promise<'end' | 'error'>} ended  resolves at the first terminal callback
 * @property {number | undefined} status
 * @property {Error | undefined} error
 * @property {Buffer[]} chunks  the response body as it arrived
 * @property {() => string} text  the response body so far
 * @property {(reason?: Error) => void} abort  aborts through the controller the request started with
 */

/**
 * A handler that records every callback it receives. With `pause`, it pauses at every chunk
 * and resumes on the next turn, as a slow reader does.
 * @param {{ calls?: string[], prefix?: string, pause?: boolean }} [options]
 *   `calls`: an array to record into (shared with the dispatcher under test, to see the order)
 * @returns {RecordingHandler}
 */
export function recordingHandler(options = {}) {
  const calls = options.calls ?? []
  const prefix = options.prefix ?? ''
  /** @type {(outcome: 'end' | 'error') => void} */
  let settle = () => {}
  /** @type {Promise<'end' | 'error'>} */
  const ended = new Promise((resolve) => {
    settle = resolve
  })
  /** @type {DispatchController | undefined} */
  let controller
  /** @type {RecordingHandler} */
  const recorder = {
    calls,
    ended,
    status: undefined,
    error: undefined,
    chunks: [],
    text: () => Buffer.concat(recorder.chunks).toString(),
    abort(
      reason = /** @type {Error} */ (new DOMException('The operation was aborted', 'AbortError')),
    ) {
      controller?.abort(reason)
    },
    handler: {
      onRequestStart(c) {
        controller = c
        calls.push(`${prefix}start`)
      },
      onResponseStart(_c, status) {
        recorder.status = status
        calls.push(`${prefix}status ${status}`)
      },
      onResponseData(c, chunk) {
        recorder.chunks.push(chunk)
        if (calls.at(-1) !== `${prefix}data`) calls.push(`${prefix}data`)
        if (options.pause) {
          c.pause()
          setImmediate(() => c.resume())
        }
      },
      onResponseEnd() {
        calls.push(`${prefix}end`)
        settle('end')
      },
      onResponseError(_c, error) {
        recorder.error = error
        calls.push(`${prefix}error ${error.name}`)
        settle('error')
      },
    },
  }
  return recorder
}

/** A controller for `instantDownstream`: nothing to abort, pause or resume. */
export const idleController = /** @type {DispatchController} */ (
  /** @type {unknown} */ ({
    aborted: false,
    paused: false,
    reason: null,
    abort() {},
    pause() {},
    resume() {},
  })
)

/**
 * A downstream dispatch that answers 200 at once, synchronously, with no socket: what an
 * interceptor composed onto it costs is all there is to measure.
 * @param {unknown} _options
 * @param {DispatchHandler} handler
 * @returns {boolean}
 */
export function instantDownstream(_options, handler) {
  handler.onRequestStart?.(idleController, {})
  handler.onResponseStart?.(idleController, 200, {}, 'OK')
  handler.onResponseEnd?.(idleController, {})
  return true
}

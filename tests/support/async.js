// @ts-check
// Waiting in tests: promises settled from outside, polling, timeouts.

/**
 * @template T
 * @typedef {object} Deferred
 * @property {Promise<T>} promise
 * @property {(value: T) => void} resolve
 * @property {(reason: unknown) => void} reject
 */

/**
 * A promise with its resolve and reject functions.
 * @template T
 * @returns {Deferred<T>}
 */
export function deferred() {
  /** @type {(value: T) => void} */
  let resolve = () => {}
  /** @type {(reason: unknown) => void} */
  let reject = () => {}
  /** @type {Promise<T>} */
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/**
 * @typedef {object} Gate
 * @property {Promise<void>} promise  resolves once the gate is open
 * @property {() => void} open
 * @property {boolean} isOpen
 */

/**
 * A promise held shut until `open()`, to hold a server's answer or a token until the test
 * says so. With `timeout`, it opens by itself after that many ms, so that nothing can hang.
 * @param {{ timeout?: number }} [options]
 * @returns {Gate}
 */
export function gate(options = {}) {
  /** @type {() => void} */
  let resolve = () => {}
  /** @type {Promise<void>} */
  const promise = new Promise((res) => {
    resolve = res
  })
  const timer =
    options.timeout === undefined ? undefined : setTimeout(() => result.open(), options.timeout)
  /** @type {Gate} */
  const result = {
    promise,
    isOpen: false,
    open() {
      clearTimeout(timer)
      result.isOpen = true
      resolve()
    },
  }
  return result
}

/**
 * Resolves after `ms`, or as soon as `signal` aborts.
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/**
 * Lets queued work run: waits `count` turns of the event loop (setImmediate).
 * @param {number} [count]
 */
export async function turns(count = 1) {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve))
}

/**
 * Polls `condition` every millisecond; rejects if it does not hold within `ms`.
 * @param {() => boolean} condition
 * @param {number} [ms]
 * @param {string} [what]  what is waited for, for the error
 */
export async function until(condition, ms = 1_000, what = 'the condition') {
  const deadline = performance.now() + ms
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timeout waiting for ${what} (${ms} ms)`)
    await sleep(1)
  }
}

/**
 * `promise`, or a rejection if it has not settled after `ms` (a hang guard).
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} [what]  what is waited for, for the error
 * @returns {Promise<T>}
 */
export function withTimeout(promise, ms, what = 'the promise') {
  /** @type {NodeJS.Timeout | undefined} */
  let timer
  /** @type {Promise<never>} */
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout: ${what} took over ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * How `promise` settles, as Promise.allSettled reports it.
 * @template T
 * @param {Promise<T>} promise
 * @returns {Promise<PromiseSettledResult<T>>}
 */
export function settled(promise) {
  return promise.then(
    (value) => ({ status: /** @type {const} */ ('fulfilled'), value }),
    (reason) => ({ status: /** @type {const} */ ('rejected'), reason }),
  )
}

/**
 * What `promise` rejects with; rejects itself if `promise` resolves.
 * @param {Promise<unknown>} promise
 * @returns {Promise<unknown>}
 */
export function rejectionOf(promise) {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got a value: ${String(value)}`)
    },
    (reason) => reason,
  )
}

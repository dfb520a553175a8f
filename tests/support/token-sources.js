// @ts-check
// Token sources (fetchToken functions) for TokenCache and accessToken() without HTTP.
import { sleep, turns } from './async.js'

/**
 * @typedef {import('undici-access-token').FetchToken} FetchToken
 * @typedef {Parameters<FetchToken>[0]} FetchContext
 * @typedef {import('undici-access-token').TokenResponse} TokenResponse
 * @typedef {(call: number, context: FetchContext) => TokenResponse | Promise<TokenResponse>} Respond
 */

/** Call n answers `<key>-<n>`, valid for an hour. */
/** @type {Respond} */
const keyed = (call, { key }) => ({ accessToken: `${key}-${call}`, expiresIn: 3600 })

/**
 * A fetchToken that records every call's context in `calls`; call n (from 1) answers
 * `respond(n, context)` — by default `<key>-<n>` for an hour — after `delay` ms.
 * @param {Respond} [respond]
 * @param {{ delay?: number }} [options]
 * @returns {{ fetchToken: FetchToken, calls: FetchContext[] }}
 */
export function tokenSource(respond = keyed, options = {}) {
  /** @type {FetchContext[]} */
  const calls = []
  /** @type {FetchToken} */
  const fetchToken = async (context) => {
    calls.push(context)
    const call = calls.length
    if (options.delay) await sleep(options.delay)
    return respond(call, context)
  }
  return { fetchToken, calls }
}

/**
 * A fetchToken that throws `error(n)` while `failing` is set (it starts set) and otherwise
 * answers `respond(n, context)`, by default `t<n>` for an hour; every call is recorded.
 * @param {(call: number) => Error} error
 * @param {Respond} [respond]
 * @returns {{ fetchToken: FetchToken, calls: FetchContext[], failing: boolean }}
 */
export function failingSource(
  error,
  respond = (call) => ({ accessToken: `t${call}`, expiresIn: 3600 }),
) {
  const source = {
    failing: true,
    /** @type {FetchContext[]} */
    calls: [],
    /** @type {FetchToken} */
    fetchToken: async (context) => {
      source.calls.push(context)
      const call = source.calls.length
      if (source.failing) throw error(call)
      return respond(call, context)
    },
  }
  return source
}

/**
 * A fetchToken whose answers the test releases one by one, oldest call first: `release()`
 * answers `t<n>` valid for `expiresIn` seconds, `release(error)` fails the call.
 * @param {number} expiresIn
 */
export function gatedSource(expiresIn) {
  /** @type {((answer: TokenResponse | Error) => void)[]} */
  const pending = []
  let calls = 0
  /** @type {FetchToken} */
  const fetchToken = () =>
    new Promise((resolve, reject) => {
      calls++
      pending.push((answer) => (answer instanceof Error ? reject(answer) : resolve(answer)))
    })
  return {
    fetchToken,
    get calls() {
      return calls
    },
    /** Calls made and not yet released. */
    get waiting() {
      return pending.length
    },
    /**
     * Answers the oldest open call (waiting a little for it to be made).
     * @param {Error} [answer]
     */
    async release(answer) {
      for (let i = 0; i < 100 && pending.length === 0; i++) await turns(5)
      const next = pending.shift()
      if (next === undefined) throw new Error('no token request is waiting')
      next(answer ?? { accessToken: `t${calls - pending.length}`, expiresIn })
    },
  }
}

// @ts-check
// Hot path: requests/s through a raw Agent, the same Agent composed with a pass-through
// interceptor (the floor), and the same Agent composed with accessToken() holding a cached
// token — one Agent, so the same connections to the same server — for undici.request, undici's
// fetch and Node's built-in fetch.
//
// Two client processes, so that the package's process-wide cost shows: process A never uses
// the package (raw and pass-through only); process B runs all three variants, so accessToken()
// has fetched its token there, as in any application that uses it. On Node 20 that enables an
// AsyncLocalStorage (the package's guard against decorating its own token requests), and its
// promise hooks then tax every promise in process B, whichever dispatcher made it.
//   accessToken (B) / pass-through (A): what an application sees — the target's ratio
//   accessToken (B) / pass-through (B): the same process and connections — the per-request cost
//   pass-through (B) / pass-through (A): the process-wide tax alone
// Samples are taken in turn, in short rounds whose order rotates, and every ratio is the median
// of the per-round ratios, so that drift on a shared machine touches each variant alike. Client
// CPU time per request is measured too: when the server is the bottleneck, throughput hides
// client cost and CPU time does not.
import { forkProcess, median, progress } from './util.js'

/** @typedef {{ rps: number, cpuMicros: number }} Sample */
/**
 * @typedef {object} HotPathRatios
 * @property {number} headline      accessToken (B) / pass-through (A), median of per-round ratios
 * @property {number} headlineMin
 * @property {number} headlineMax
 * @property {number} sameProcess   accessToken (B) / pass-through (B)
 * @property {number} tax           pass-through (B) / pass-through (A)
 * @property {number} tokenVsRaw    accessToken (B) / raw (A)
 * @property {number} passVsRaw     pass-through (A) / raw (A)
 * @property {number} cpuExtra      client CPU µs/request, accessToken (B) − pass-through (A)
 */
/**
 * @typedef {object} HotPathResult
 * @property {number} rounds
 * @property {Record<string, Record<string, number>>} rps        api → variant → median requests/s
 * @property {Record<string, Record<string, number>>} cpuMicros  api → variant → median CPU µs/request
 * @property {Record<string, HotPathRatios>} ratios
 */

/** The samples of a round: process, variant. */
const variants = [
  ['A', 'raw'],
  ['A', 'passThrough'],
  ['B', 'raw'],
  ['B', 'passThrough'],
  ['B', 'accessToken'],
]
const apis = ['undici.request', 'undici fetch', 'built-in fetch']

/**
 * @param {string} origin  the fast responder
 * @param {{ rounds: number, requestCount: number, fetchCount: number, deadline: number }} options
 * @returns {Promise<HotPathResult>}
 */
export async function hotPath(origin, { rounds, requestCount, fetchCount, deadline }) {
  const processes = {
    A: await forkProcess('./client-process.js'),
    B: await forkProcess('./client-process.js'),
  }
  const countOf = (/** @type {string} */ api) =>
    api === 'undici.request' ? requestCount : fetchCount
  /** @param {string} name @param {string} variant @param {string} api @param {number} count @returns {Promise<Sample>} */
  const sample = (name, variant, api, count) =>
    processes[/** @type {'A' | 'B'} */ (name)].call('hot:run', { origin, api, variant, count })

  /** @type {Record<string, Record<string, Sample[]>>} */
  const samples = {}
  try {
    // Warm up: JIT, connections, the token.
    for (const api of apis) {
      progress(`hot path: warming up ${api}`, true)
      samples[api] = {}
      for (const [name, variant] of variants) {
        const warmUp = api === 'undici.request' ? 5_000 : 2_000
        await sample(/** @type {string} */ (name), /** @type {string} */ (variant), api, warmUp)
        samples[api][`${variant} (${name})`] = []
      }
    }
    for (let round = 0; round < rounds; round++) {
      if (round >= 3 && performance.now() > deadline) break // at least three rounds
      for (const api of apis) {
        progress(`hot path: round ${round + 1}/${rounds}, ${api}`, true)
        for (let i = 0; i < variants.length; i++) {
          const [name, variant] = /** @type {[string, string]} */ (
            variants[(i + round) % variants.length]
          )
          samples[api]?.[`${variant} (${name})`]?.push(
            await sample(name, variant, api, countOf(api)),
          )
        }
      }
    }
  } finally {
    await Promise.all(Object.values(processes).map((child) => child.close()))
  }

  const done = samples[apis[0] ?? '']?.['raw (A)']?.length ?? 0
  /** @type {HotPathResult} */
  const result = { rounds: done, rps: {}, cpuMicros: {}, ratios: {} }
  for (const api of apis) {
    const of = (/** @type {string} */ key) =>
      /** @type {Sample[]} */ (/** @type {Record<string, Sample[]>} */ (samples[api])[key])
    const keys = Object.keys(samples[api] ?? {})
    result.rps[api] = Object.fromEntries(
      keys.map((key) => [key, median(of(key).map((s) => s.rps))]),
    )
    result.cpuMicros[api] = Object.fromEntries(
      keys.map((key) => [key, median(of(key).map((s) => s.cpuMicros))]),
    )
    /** Per-round values of f(sample of a, sample of b). @param {string} a @param {string} b @param {(x: Sample, y: Sample) => number} f */
    const perRound = (a, b, f) =>
      Array.from({ length: done }, (_, r) =>
        f(/** @type {Sample} */ (of(a)[r]), /** @type {Sample} */ (of(b)[r])),
      )
    const rpsRatio = (/** @type {Sample} */ x, /** @type {Sample} */ y) => x.rps / y.rps
    const headline = perRound('accessToken (B)', 'passThrough (A)', rpsRatio)
    result.ratios[api] = {
      headline: median(headline),
      headlineMin: Math.min(...headline),
      headlineMax: Math.max(...headline),
      sameProcess: median(perRound('accessToken (B)', 'passThrough (B)', rpsRatio)),
      tax: median(perRound('passThrough (B)', 'passThrough (A)', rpsRatio)),
      tokenVsRaw: median(perRound('accessToken (B)', 'raw (A)', rpsRatio)),
      passVsRaw: median(perRound('passThrough (A)', 'raw (A)', rpsRatio)),
      cpuExtra: median(
        perRound('accessToken (B)', 'passThrough (A)', (x, y) => x.cpuMicros - y.cpuMicros),
      ),
    }
  }
  return result
}

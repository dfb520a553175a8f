// @ts-check
// `npm run bench:otel`: the hot path with `undici-access-token/otel` installed, side by side in
// one run. Four client processes (bench/client-process.js), each on its own Agent:
//   A  pass-through interceptor, the package never used (the floor of the hot-path ratio)
//   B  accessToken(), no instrumentation
//   C  accessToken(), instrument() with SDK providers that export nothing
//   D  accessToken(), instrument() with metrics collected every second and spans batched
// (C and D preload bench/otel-instrument.js). Then the composed dispatch alone, in this process,
// with a downstream that answers at once (no sockets): ns per request without instrument(), and
// with it installed with each SDK setup, toggled between rounds. Samples are taken in turn, in
// rounds whose order rotates; every ratio is the median of the per-round ratios, so that drift
// on a shared machine touches each variant alike.
import { accessToken, TokenCache } from 'undici-access-token'
import { instrument } from 'undici-access-token/otel'
import { instantDownstream } from '../tests/support/handlers.js'
import { sdkProviders } from './otel-instrument.js'
import { forkProcess, median, progress, progressDone, startServers } from './util.js'

const preload = new URL('./otel-instrument.js', import.meta.url).href
const processes = /** @type {const} */ ([
  ['A', 'passThrough', []],
  ['B', 'accessToken', []],
  ['C', 'accessToken', ['--otel=no-exporter']],
  ['D', 'accessToken', ['--otel=exporter']],
])
const apis = ['undici.request', 'undici fetch', 'built-in fetch']
const rounds = Number(process.env.BENCH_ROUNDS ?? 12)
const countOf = (/** @type {string} */ api) => (api === 'undici.request' ? 8_000 : 2_500)

const servers = await startServers()
const clients = await Promise.all(
  processes.map(([, , args]) =>
    forkProcess('./client-process.js', {
      args: [...args],
      execArgv: args.length === 0 ? [] : ['--import', preload],
    }),
  ),
)
/** @type {Record<string, Record<string, number[]>>} api → process → requests/s per round */
const rps = Object.fromEntries(apis.map((api) => [api, { A: [], B: [], C: [], D: [] }]))
try {
  const sample = (
    /** @type {number} */ i,
    /** @type {string} */ api,
    /** @type {number} */ count,
  ) =>
    clients[i]?.call('hot:run', {
      origin: servers.fast,
      api,
      variant: processes[i]?.[1],
      count,
    })
  for (const api of apis) {
    progress(`otel: warming up ${api}`, true)
    for (let i = 0; i < processes.length; i++) await sample(i, api, countOf(api) / 2)
  }
  for (let round = 0; round < rounds; round++) {
    for (const api of apis) {
      progress(`otel: round ${round + 1}/${rounds}, ${api}`, true)
      for (let j = 0; j < processes.length; j++) {
        const i = (j + round) % processes.length
        const { rps: value } = await sample(i, api, countOf(api))
        rps[api]?.[/** @type {string} */ (processes[i]?.[0])]?.push(value)
      }
    }
  }
} finally {
  await Promise.all(clients.map((client) => client.close()))
  await servers.close()
  progressDone()
}

/** Median over rounds of a / b. @param {number[]} a @param {number[]} b */
const ratio = (a, b) => median(a.map((x, r) => x / /** @type {number} */ (b[r]))).toFixed(3)
console.log(`${rounds} rounds; requests/s medians, ratios medians of per-round ratios\n`)
console.log(
  '| client API | pass-through (A) | accessToken (B) | + instrument(), no exporter (C) | + instrument(), exporter (D) | B / A | C / A | D / A | C / B | D / B |',
)
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
for (const api of apis) {
  const { A = [], B = [], C = [], D = [] } = rps[api] ?? {}
  const cells = [A, B, C, D].map((values) => Math.round(median(values)))
  console.log(
    `| ${api} | ${cells.join(' | ')} | ${ratio(B, A)} | ${ratio(C, A)} | ${ratio(D, A)} | ${ratio(C, B)} | ${ratio(D, B)} |`,
  )
}

// --- the dispatch alone ------------------------------------------------------------------

const origin = 'https://api.example.com'
const tokens = new TokenCache({
  fetchToken: async () => ({ accessToken: 'bench-token', expiresIn: 3600 }),
})
await tokens.get()
const dispatch = /** @type {(options: object, handler: object) => boolean} */ (
  accessToken({ origins: origin, tokens })(
    /** @type {import('undici').Dispatcher['dispatch']} */ (
      /** @type {unknown} */ (instantDownstream)
    ),
  )
)
const caller = {
  onRequestStart() {},
  onResponseStart() {},
  onResponseData() {},
  onResponseEnd() {},
}
/** ns per dispatch over `count`, options as undici.request sends them. */
const timeDispatch = (/** @type {number} */ count) => {
  const started = process.hrtime.bigint()
  for (let i = 0; i < count; i++) {
    dispatch({ origin, path: '/readers', method: 'GET', headers: { accept: 'a' } }, caller)
  }
  return Number(process.hrtime.bigint() - started) / count
}
const setups = {
  none: undefined,
  'no exporter': sdkProviders(false),
  exporter: sdkProviders(true),
}
/** @type {Record<string, number[]>} */
const ns = { none: [], 'no exporter': [], exporter: [] }
const names = Object.keys(setups)
for (let round = 0; round < rounds * 2; round++) {
  progress(`otel: dispatch alone, round ${round + 1}/${rounds * 2}`, true)
  for (let j = 0; j < names.length; j++) {
    const name = /** @type {keyof typeof setups} */ (names[(j + round) % names.length])
    const providers = setups[name]
    const uninstrument = providers === undefined ? () => {} : instrument(providers)
    timeDispatch(50_000) // warm up after (un)subscribing
    ns[name]?.push(timeDispatch(300_000))
    uninstrument()
  }
}
progressDone()
const none = ns.none ?? []
console.log(`\nThe dispatch alone (no sockets), ${rounds * 2} rounds of 300 000:\n`)
console.log('| instrument() | ns per request | vs none |')
console.log('| --- | --- | --- |')
for (const name of names) {
  const values = ns[name] ?? []
  console.log(`| ${name} | ${median(values).toFixed(0)} | ${ratio(values, none)} |`)
}

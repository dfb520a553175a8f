// @ts-check
// `npm run bench`: the benchmark, side by side in one run, on loopback only, within a time budget.
//   1. hot path: requests/s raw vs pass-through vs accessToken() (request, undici fetch, built-in fetch)
//   2. stampede: token requests caused by 1 / 100 / 10 000 concurrent cold requests, vs peers
//   3. rollover: p50/p99/max while 2 s tokens expire under steady load, vs peers
//   4. memory: allocations per request, heap after 1 000 000 requests, 100 000 distinct keys
// Writes bench/results.md and bench/rollover.svg; prints the ratios and tables; a progress line
// on stderr. Environment: BENCH_QUICK=1 for a short run (development), BENCH_BUDGET_S (default
// 270) for the whole run's budget — sections shrink or are skipped to stay inside it.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { kinds } from './clients.js'
import { hotPath } from './hot-path.js'
import { markdown, summary, svg } from './report.js'
import { rollover } from './rollover.js'
import { stampede } from './stampede.js'
import { elapsedSeconds, progress, progressDone, startServers } from './util.js'

const quick = process.env.BENCH_QUICK === '1'
const budgetSeconds = Number(process.env.BENCH_BUDGET_S ?? 270)
const started = performance.now()
/** Epoch of the performance clock at which the section named must be done. */
const by = (/** @type {number} */ seconds) => started + Math.min(seconds, budgetSeconds - 5) * 1000

const versionOf = (/** @type {string} */ name) => {
  try {
    const url = new URL(`../node_modules/${name}/package.json`, import.meta.url)
    return /** @type {{ version: string }} */ (JSON.parse(readFileSync(url, 'utf8'))).version
  } catch {
    return '?'
  }
}
const loadStart = os.loadavg()
const cpus = os.cpus()

progress('starting the loopback servers (a separate process)', true)
const servers = await startServers()

/** @type {import('./report.js').Results} */
const results = {
  machine: {},
  hotPath: undefined,
  hotPathPlan: {
    requestCount: quick ? 3_000 : 8_000,
    fetchCount: quick ? 1_000 : 2_500,
    concurrency: 50,
  },
  memory: undefined,
  stampede: undefined,
  rollover: undefined,
  configs: kinds.map(({ name, config }) => ({ name, config })),
  notes: [],
}

try {
  // 1. Hot path.
  results.hotPath = await hotPath(servers.fast, {
    rounds: quick ? 3 : 14,
    requestCount: results.hotPathPlan.requestCount,
    fetchCount: results.hotPathPlan.fetchCount,
    deadline: by(85),
  })

  // 4a. Memory and allocations, in a child with --expose-gc (while nothing else runs here).
  progress('memory: allocations, 1 000 000 requests, 100 000 keys (child process)', true)
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '--expose-gc',
      fileURLToPath(new URL('./memory.js', import.meta.url)),
      servers.fast,
      quick ? 'quick' : 'full',
    ],
    { maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
  )
  results.memory = JSON.parse(stdout)

  // 2. Stampede.
  const tokenDelay = 20
  results.stampede = {
    ...(await stampede(servers, {
      sizes: quick ? [1, 100, 1_000] : [1, 100, 10_000],
      tokenDelay,
      deadline: by(175),
    })),
    tokenDelay,
  }

  // 3. Rollover.
  const plan = { lifetime: 2, tokenDelay: 200, rate: 400, seconds: quick ? 3 : 7 }
  results.rollover = {
    ...(await rollover(servers, { ...plan, deadline: by(budgetSeconds) })),
    ...plan,
  }
} finally {
  await servers.close()
}
progressDone()

const wall = elapsedSeconds()
const loadEnd = os.loadavg()
results.machine = {
  date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  machine: `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores (server and client share them), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.type()} ${os.release()}`,
  software: `Node ${process.version}, undici ${versionOf('undici')}; peers: @badgateway/oauth2-client ${versionOf('@badgateway/oauth2-client')}, google-auth-library ${versionOf('google-auth-library')} (gaxios ${versionOf('gaxios')}), axios ${versionOf('axios')} + axios-auth-refresh ${versionOf('axios-auth-refresh')}, p-memoize ${versionOf('p-memoize')} + expiry-map ${versionOf('expiry-map')}`,
  'load average (1/5/15 min)': `${loadStart.map((l) => l.toFixed(2)).join(' / ')} at the start, ${loadEnd.map((l) => l.toFixed(2)).join(' / ')} at the end`,
  'wall time': `${wall.toFixed(0)} s${quick ? ' (BENCH_QUICK=1: reduced counts)' : ''}`,
  processes:
    'bench/run.js only orchestrates; the loopback servers (token endpoint, API, hot-path responder) run in one forked process; every client runs in a fresh process of its own (two for the hot path, one per stampede and rollover row); the memory section in a child process with --expose-gc',
}
results.notes.push(
  'Loopback only (127.0.0.1); every loop is bounded by a count and the whole run by a time budget (BENCH_BUDGET_S, default 270 s).',
  'Ratios are taken within one run, variants interleaved, so drift on a shared machine touches them alike; absolute requests/s vary with the machine and its load.',
  'Peers are measured as their documentation has users wire them; where a setting made the comparison fairer it is in the configuration table (google-auth-library’s default 5-minute eager refresh threshold would refresh a 2 s token on every request, so it is set to a tenth of the lifetime, like this package’s clock skew).',
  'The API answers 401 to a token it did not issue or that has expired (by the endpoint’s clock), so a client that sends a token at the very edge of its life pays for it.',
)

const caption = `${results.rollover?.lifetime ?? 2} s tokens, ${results.rollover?.tokenDelay ?? 200} ms token endpoint, ${results.rollover?.rate ?? 400} req/s open loop; ${results.machine.date}, ${cpus.length}-core ${os.type()}, Node ${process.version}`
await writeFile(new URL('./results.md', import.meta.url), markdown(results))
if (results.rollover !== undefined) {
  await writeFile(new URL('./rollover.svg', import.meta.url), svg(results.rollover, caption))
}
process.stdout.write(`${summary(results)}\n`)
process.stdout.write(
  `Wrote bench/results.md and bench/rollover.svg in ${wall.toFixed(0)} s (load average ${loadStart[0]?.toFixed(2)} → ${loadEnd[0]?.toFixed(2)}).\n`,
)

// @ts-check
// Parse time of a 401's `WWW-Authenticate`, per call of challengeAllowsRetry (what every 401
// runs), for a well-formed header and for the two shapes that made the former regex quadratic
// (issue #10, item 5), at 1, 16 and 64 KiB. Standalone: not part of `npm run bench`.
//
//   npm run build && node bench/www-authenticate.js
//   node bench/www-authenticate.js path/to/www-authenticate.js   (another build, e.g. an older one)
//
// It imports the built file, dist/oauth/www-authenticate.js: build first (`npm run build`, or any
// script that builds, such as `npm run bench`), or the numbers are those of a stale build.
// Wall time, as the event loop sees it: each row warms up for 100 ms, then runs batches of calls
// for 300 ms and prints the median batch's time per call (3 single calls, when one takes over a
// second).
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const target = process.argv[2]
  ? pathToFileURL(resolve(process.argv[2])).href
  : new URL('../dist/oauth/www-authenticate.js', import.meta.url).href
/** @type {{ challengeAllowsRetry(header: string | string[] | undefined): boolean }} */
const { challengeAllowsRetry } = await import(target)

const KiB = 1024

/** @type {[string, (bytes: number) => string][]} */
const shapes = [
  [
    'well-formed (long error_description)',
    (bytes) => {
      const head = 'Bearer realm="example", error="invalid_token", error_description="'
      const words = 'The access token expired. '.repeat(Math.ceil(bytes / 26))
      return `${head}${words.slice(0, bytes - head.length - 1)}"`
    },
  ],
  ['hostile: a run of token characters', (bytes) => `Bearer ${'a'.repeat(bytes - 7)}`],
  [
    'hostile: unterminated quoted string',
    (bytes) => `Bearer error="invalid_token", x="${'a'.repeat(bytes - 33)}`,
  ],
]

/** Milliseconds for `calls` calls. */
function time(/** @type {string} */ header, /** @type {number} */ calls) {
  const start = performance.now()
  for (let i = 0; i < calls; i++) challengeAllowsRetry(header)
  return performance.now() - start
}

/** Microseconds per call: the median of batches over 300 ms, after a 100 ms warm-up. */
function measure(/** @type {string} */ header) {
  const first = time(header, 1) // warm-up (compiles, flattens the string); 1 call if it is slow
  if (first > 1000) {
    const samples = [first, time(header, 1), time(header, 1)].sort((a, b) => a - b)
    return { micros: (samples[1] ?? first) * 1000, calls: 3 }
  }
  let batch = 1
  while (time(header, batch) < 10 && batch < 1 << 24) batch *= 2
  const warm = performance.now() + 100
  while (performance.now() < warm) time(header, batch)
  /** @type {number[]} */
  const perCall = []
  const until = performance.now() + 300
  do perCall.push(time(header, batch) / batch)
  while (performance.now() < until)
  perCall.sort((a, b) => a - b)
  return {
    micros: (perCall[Math.floor(perCall.length / 2)] ?? 0) * 1000,
    calls: batch * perCall.length,
  }
}

const format = (/** @type {number} */ micros) =>
  micros >= 1000 ? `${(micros / 1000).toFixed(1)} ms` : `${micros.toFixed(1)} µs`

console.log(`challengeAllowsRetry from ${target}, Node ${process.version}`)
const typical = 'Bearer realm="example", error="invalid_token", error_description="expired"'
console.log(
  `${`typical (${typical.length} B)`.padEnd(44)} ${format(measure(typical).micros).padStart(10)} per call`,
)
for (const [name, make] of shapes) {
  for (const kib of [1, 16, 64]) {
    const header = make(kib * KiB)
    const { micros, calls } = measure(header)
    console.log(
      `${`${name}, ${kib} KiB`.padEnd(44)} ${format(micros).padStart(10)} per call  (${calls} calls)`,
    )
  }
}

// Hot-path overhead: requests/s through a raw Agent, an Agent composed with a
// pass-through interceptor, and an Agent composed with accessToken() holding a
// cached token — same server, taken in turn, several rounds, ratios printed.
// Loopback only; bounded loops.  Run: npm run build && node bench/hot-path.js
import { createServer } from 'node:http'
import { Agent, request } from 'undici'
import { accessToken } from 'undici-access-token'

const requestsPerRound = Number(process.env.BENCH_REQUESTS ?? 20_000)
const rounds = Number(process.env.BENCH_ROUNDS ?? 5)
const concurrency = 50

const server = createServer((_, res) => res.end('ok'))
server.keepAliveTimeout = 60_000
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const origin = `http://127.0.0.1:${server.address().port}`

const passThrough = (dispatch) => (opts, handler) => dispatch(opts, handler)
const variants = {
  raw: new Agent({ connections: concurrency }),
  passThrough: new Agent({ connections: concurrency }).compose(passThrough),
  accessToken: new Agent({ connections: concurrency }).compose(
    accessToken({
      origins: origin,
      fetchToken: async () => ({ accessToken: 'bench-token', expiresIn: 3600 }),
    }),
  ),
}

async function run(dispatcher, count) {
  let next = 0
  const worker = async () => {
    while (next < count) {
      next++
      const { body } = await request(origin, { dispatcher, path: '/' })
      await body.dump()
    }
  }
  const start = process.hrtime.bigint()
  await Promise.all(Array.from({ length: concurrency }, worker))
  return (count / Number(process.hrtime.bigint() - start)) * 1e9
}

for (const dispatcher of Object.values(variants)) await run(dispatcher, 2_000) // warm up, fetch the token
const totals = Object.fromEntries(Object.keys(variants).map((name) => [name, []]))
for (let round = 0; round < rounds; round++) {
  for (const [name, dispatcher] of Object.entries(variants)) {
    totals[name].push(await run(dispatcher, requestsPerRound))
  }
  process.stderr.write(`round ${round + 1}/${rounds}\r`)
}
const median = (values) => values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)]
const rps = Object.fromEntries(
  Object.entries(totals).map(([name, values]) => [name, median(values)]),
)
console.log(
  `requests/s (median of ${rounds} rounds of ${requestsPerRound}, concurrency ${concurrency})`,
)
for (const [name, value] of Object.entries(rps))
  console.log(`  ${name.padEnd(12)} ${value.toFixed(0)}`)
console.log(
  `accessToken / passThrough = ${(rps.accessToken / rps.passThrough).toFixed(3)} (goal ≥ 0.97)`,
)
console.log(`accessToken / raw         = ${(rps.accessToken / rps.raw).toFixed(3)}`)
console.log(`passThrough / raw         = ${(rps.passThrough / rps.raw).toFixed(3)}`)
await Promise.all(Object.values(variants).map((dispatcher) => dispatcher.close()))
server.close()

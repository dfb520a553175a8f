// @ts-check
// `npm run bench:hot-path`: only the hot-path section of `npm run bench` (raw vs pass-through vs
// accessToken(), side by side in one run), for checking a change to the per-request path quickly.
import { hotPath } from './hot-path.js'
import { startServers } from './util.js'

const servers = await startServers()
try {
  const result = await hotPath(servers.fast, {
    rounds: Number(process.env.BENCH_ROUNDS ?? 8),
    requestCount: 8_000,
    fetchCount: 2_500,
    deadline: performance.now() + 240_000,
  })
  for (const [api, ratios] of Object.entries(result.ratios)) {
    console.log(
      `${api.padEnd(16)} accessToken/pass-through ${ratios.headline.toFixed(3)} (rounds ${ratios.headlineMin.toFixed(2)}–${ratios.headlineMax.toFixed(2)}), same process ${ratios.sameProcess.toFixed(3)}, vs raw ${ratios.tokenVsRaw.toFixed(3)}, client CPU +${ratios.cpuExtra.toFixed(1)} µs/request`,
    )
  }
} finally {
  await servers.close()
}

// @ts-check
// Turns the sections' results into bench/results.md, the console summary and bench/rollover.svg.
import { int, table } from './util.js'

const fixed = (/** @type {number} */ value, digits = 1) =>
  Number.isFinite(value) ? value.toFixed(digits) : '–'
const ratio = (/** @type {number} */ value) => fixed(value, 3)
const mib = (/** @type {number} */ bytes) => `${fixed(bytes / 1024 / 1024, 1)} MiB`

/**
 * @typedef {object} Results
 * @property {Record<string, string>} machine
 * @property {import('./hot-path.js').HotPathResult | undefined} hotPath
 * @property {{ requestCount: number, fetchCount: number, concurrency: number }} hotPathPlan
 * @property {any} memory
 * @property {{ rows: import('./stampede.js').StampedeRow[], skipped: string[], tokenDelay: number } | undefined} stampede
 * @property {{ rows: import('./rollover.js').RolloverRow[], skipped: string[], lifetime: number, tokenDelay: number, rate: number, seconds: number } | undefined} rollover
 * @property {{ name: string, config: string }[]} configs
 * @property {string[]} notes
 */

/** @param {Results} results */
export function hotPathTables(results) {
  const hot = results.hotPath
  if (hot === undefined) return ['(skipped)']
  const rows = Object.keys(hot.rps).map((api) => {
    const rps = /** @type {Record<string, number>} */ (hot.rps[api])
    const cpu = /** @type {Record<string, number>} */ (hot.cpuMicros[api])
    const r = /** @type {import('./hot-path.js').HotPathRatios} */ (hot.ratios[api])
    const at = (/** @type {string} */ key) => /** @type {number} */ (rps[key])
    const cpuAt = (/** @type {string} */ key) => fixed(/** @type {number} */ (cpu[key]))
    return [
      api,
      int(at('raw (A)')),
      int(at('passThrough (A)')),
      int(at('accessToken (B)')),
      `**${ratio(r.headline)}** (${ratio(r.headlineMin)}–${ratio(r.headlineMax)})`,
      ratio(r.sameProcess),
      ratio(r.tax),
      ratio(r.passVsRaw),
      ratio(r.tokenVsRaw),
      `${cpuAt('raw (A)')} / ${cpuAt('passThrough (A)')} / ${cpuAt('passThrough (B)')} / ${cpuAt('accessToken (B)')}`,
    ]
  })
  return [
    table(
      [
        'client API',
        '`new Agent()` req/s',
        '+ pass-through req/s',
        '+ `accessToken()` req/s',
        'accessToken / pass-through (range over rounds)',
        'same process: accessToken / pass-through',
        'pass-through with / without the package active',
        'pass-through / raw',
        'accessToken / raw',
        'client CPU µs/req: raw / pass-through / pass-through, package active / accessToken',
      ],
      rows,
    ),
  ]
}

/** @param {Results} results */
export function allocationTables(results) {
  const memory = results.memory
  if (memory === undefined) return ['(skipped)']
  const only = memory.dispatchOnly
  const names = {
    none: 'no interceptor (the downstream dispatch itself)',
    passThrough: 'pass-through interceptor',
    accessToken: '`accessToken()`, cached token',
  }
  const dispatchRows = Object.entries(only.variants).map(([name, v]) => {
    const variant =
      /** @type {{ nsPerRequest: number, bytesPerRequest: number, heapBefore: number, heapAfter: number }} */ (
        v
      )
    return [
      names[/** @type {keyof typeof names} */ (name)] ?? name,
      fixed(variant.nsPerRequest, 0),
      fixed(variant.bytesPerRequest, 0),
      `${mib(variant.heapBefore)} → ${mib(variant.heapAfter)}`,
    ]
  })
  const http = memory.http
  /** @type {Record<string, string>} */
  const httpNames = {
    raw: '`new Agent()`',
    passThrough: '+ pass-through',
    accessToken: '+ `accessToken()`, cached token',
    passThroughAfter: '+ pass-through, after `accessToken()` fetched a token in the process',
  }
  const httpRows = Object.entries(http.bytesPerRequest).map(([name, bytes]) => [
    httpNames[name] ?? name,
    int(/** @type {number} */ (bytes)),
  ])
  return [
    `Interceptor alone, ${int(only.count)} requests (composed dispatch called with a downstream that answers 200 synchronously, no sockets):`,
    '',
    table(
      [
        'dispatch',
        'ns/request',
        'bytes allocated/request',
        `heap after full GC, before → after ${int(only.count)}`,
      ],
      dispatchRows,
    ),
    '',
    `Real HTTP through \`undici.request\` (the whole client process, ${int(http.count)} requests each, in this order; bytes allocated = growth of the used heap + what each GC freed, from V8's GC profiler):`,
    '',
    table(['dispatcher', 'bytes allocated/request'], httpRows),
    '',
    `Heap after full GC before and after a further ${int(http.longCount)} real requests through \`accessToken()\`: ${mib(http.heapBefore)} → ${mib(http.heapAfter)}.`,
  ]
}

/** @param {Results} results */
export function stampedeTable(results) {
  const stampede = results.stampede
  if (stampede === undefined) return ['(skipped)']
  const rows = stampede.rows.map((row) => [
    row.name,
    int(row.concurrency),
    `**${int(row.tokenRequests)}**`,
    int(row.unauthorizedHits),
    int(row.failed),
    int(row.ms),
  ])
  return [
    table(
      [
        'client',
        'concurrent cold requests',
        'token requests',
        'API hits answered 401',
        'callers that got no 200',
        'wall ms',
      ],
      rows,
    ),
    ...(stampede.skipped.length > 0
      ? ['', `Skipped for the time budget: ${stampede.skipped.join(', ')}.`]
      : []),
  ]
}

/** @param {Results} results */
export function rolloverTable(results) {
  const rollover = results.rollover
  if (rollover === undefined) return ['(skipped)']
  const rows = rollover.rows.map((row) => [
    row.label,
    fixed(row.p50),
    `**${fixed(row.p99)}**`,
    fixed(row.max),
    int(row.tokenRequests),
    int(row.unauthorizedHits),
    int(row.failed),
  ])
  return [
    table(
      [
        'client',
        'p50 ms',
        'p99 ms',
        'max ms',
        'token requests',
        'API hits answered 401',
        'callers that got no 200',
      ],
      rows,
    ),
    ...(rollover.skipped.length > 0
      ? ['', `Skipped for the time budget: ${rollover.skipped.join(', ')}.`]
      : []),
  ]
}

/** @param {Results} results */
export function keysTable(results) {
  const keys = results.memory?.keys
  if (keys === undefined) return ['(skipped)']
  const rows = Object.entries(keys.byStore).map(([name, v]) => {
    const store =
      /** @type {{ heapBefore: number, heapAfter: number, heapAfterDrop: number, fetches: number, recent: number, recentRefetched: number }} */ (
        v
      )
    return [
      name,
      int(store.fetches),
      `${mib(store.heapBefore)} → ${mib(store.heapAfter)} (+${mib(store.heapAfter - store.heapBefore)})`,
      `${int(store.recent - store.recentRefetched)} of ${int(store.recent)}`,
      mib(store.heapAfterDrop),
    ]
  })
  return [
    table(
      [
        'store',
        'token fetches',
        `heap after full GC, before → after ${int(keys.keys)} keys`,
        'most recent keys still cached',
        'heap after the interceptor is dropped',
      ],
      rows,
    ),
  ]
}

/** @param {Results} results */
export function markdown(results) {
  const m = results.machine
  const lines = [
    '# Benchmark results',
    '',
    `Written by \`npm run bench\` (bench/run.js) on ${m.date}. Do not edit by hand: run it again.`,
    '',
    table(
      ['', ''],
      Object.entries(m).map(([key, value]) => [key, value]),
    ),
    '',
    '## 1. Hot path: requests/s with a cached token',
    '',
    `In each client process one \`Agent({ connections: ${results.hotPathPlan.concurrency} })\` is used raw, composed with a pass-through interceptor and composed with \`accessToken()\` holding a cached token — the same connections to the same server — at concurrency ${results.hotPathPlan.concurrency}, ${int(results.hotPathPlan.requestCount)} requests per sample for \`undici.request\` and ${int(results.hotPathPlan.fetchCount)} for the two fetches, ${results.hotPath?.rounds ?? 0} rounds. Two client processes: A never uses the package (raw and pass-through), B runs all three, so \`accessToken()\` has fetched its token there, as in an application that uses it. The five samples of a round are taken in turn, the order rotating each round; requests/s are medians over rounds, ratios medians of the per-round ratios. **accessToken / pass-through** is B's \`accessToken()\` over A's pass-through: what an application sees, and the target's ratio (≥ 0.97). *Same process* compares B's two (same connections), *pass-through with / without the package active* is B's pass-through over A's: the process-wide cost alone. The server is a minimal HTTP/1.1 responder in another process (a canned 200 per request head), so that the client is the bottleneck. Client CPU is \`process.cpuUsage()\` of the client process per request.`,
    '',
    ...hotPathTables(results),
    '',
    '### Allocations and heap per request',
    '',
    ...allocationTables(results),
    '',
    '## 2. Stampede: token requests caused by concurrent cold requests',
    '',
    `A new client per row (empty cache); N requests started in the same tick against a loopback API that answers 401 to a missing or expired token; token endpoint latency ${results.stampede?.tokenDelay ?? '–'} ms. Target: 1 token request.`,
    '',
    ...stampedeTable(results),
    '',
    '## 3. Rollover: latency while tokens expire under steady load',
    '',
    results.rollover === undefined
      ? '(skipped)'
      : `Token lifetime ${results.rollover.lifetime} s, token endpoint latency ${results.rollover.tokenDelay} ms; open-loop load of ${results.rollover.rate} requests/s for ${results.rollover.seconds} s per row (latency counted from each request's scheduled start, so a stall is charged to every request it holds up). Each client was warmed with one request first (its cold fetch is section 2's business). The first row is the same client with a 1 h token: the latency without any rollover. Target: p99 unchanged by rollover.`,
    '',
    ...rolloverTable(results),
    '',
    '![latency over time at rollover](rollover.svg)',
    '',
    '## 4. Memory: many keys',
    '',
    results.memory === undefined
      ? '(skipped)'
      : `${int(results.memory.keys.keys)} requests through \`accessToken({ key: ({ path }) => path, fetchToken })\`, each path its own key (token fetched in memory, no HTTP; the composed dispatch with a synchronous downstream as above), ${1000} at a time; then the most recent ${int(results.memory.keys.recent)} keys are requested again and fetches counted (no fetch = still cached). The 1 000 000-request heap is in section 1 (interceptor alone).`,
    '',
    ...keysTable(results),
    '',
    '## How each client was configured',
    '',
    table(
      ['client', 'configuration'],
      results.configs.map(({ name, config }) => [name, config]),
    ),
    '',
    '## Notes',
    '',
    ...results.notes.map((note) => `- ${note}`),
    '',
  ]
  return lines.join('\n')
}

/** The console summary: the ratios first. @param {Results} results */
export function summary(results) {
  const out = []
  const hot = results.hotPath
  if (hot !== undefined) {
    out.push(
      'Hot path: accessToken() (cached token, in a process where it is active) / pass-through (in a process without it), medians of per-round ratios:',
    )
    for (const [api, r] of Object.entries(hot.ratios)) {
      out.push(
        `  ${api.padEnd(15)} ${ratio(r.headline)} (target ≥ 0.97)   same process ${ratio(r.sameProcess)}   tax on pass-through ${ratio(r.tax)}   pass-through/raw ${ratio(r.passVsRaw)}   +${fixed(r.cpuExtra)} µs CPU/req`,
      )
    }
    out.push('', ...hotPathTables(results), '')
  }
  if (results.memory !== undefined) out.push(...allocationTables(results), '')
  if (results.stampede !== undefined) {
    out.push('Stampede (target: 1 token request):', '', ...stampedeTable(results), '')
  }
  if (results.rollover !== undefined) {
    out.push('Rollover (target: p99 unchanged by rollover):', '', ...rolloverTable(results), '')
  }
  if (results.memory !== undefined) out.push('Many keys:', '', ...keysTable(results), '')
  return out.join('\n')
}

const palette = {
  'undici-access-token': '#1a7f37',
  'undici-access-token, refreshAhead: false': '#bc4c00',
}

/**
 * Latency over time at rollover: one panel per client, the worst latency in each 50 ms
 * window (log scale), token requests marked.
 * @param {NonNullable<Results['rollover']>} rollover
 * @param {string} caption
 */
export function svg(rollover, caption) {
  const bucketMs = 50
  const width = 900
  const left = 64
  const right = 16
  const panelHeight = 74
  const gap = 30
  const top = 44
  const plotWidth = width - left - right
  const rows = rollover.rows
  const height = top + rows.length * (panelHeight + gap) + 30
  const durationMs = rollover.seconds * 1000
  const maxLatency = Math.max(10, ...rows.map((row) => row.max))
  const yMax = 10 ** Math.ceil(Math.log10(maxLatency))
  const yMin = 0.5
  const x = (/** @type {number} */ ms) => left + (Math.min(ms, durationMs) / durationMs) * plotWidth
  const y = (/** @type {number} */ ms, /** @type {number} */ panelTop) =>
    panelTop +
    panelHeight -
    ((Math.log10(Math.max(ms, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) *
      panelHeight
  const esc = (/** @type {string} */ text) =>
    text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12" role="img" aria-labelledby="title">`,
    `<title id="title">${esc(`Latency over time at token rollover, one panel per client: ${caption}`)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${left}" y="18" font-size="14" font-weight="600">${esc(`Latency at token rollover: worst request per ${bucketMs} ms window (log scale)`)}</text>`,
    `<text x="${left}" y="34" fill="#57606a">${esc(caption)}</text>`,
  ]
  rows.forEach((row, index) => {
    const panelTop = top + index * (panelHeight + gap) + 16
    const color =
      row.long || palette[/** @type {keyof typeof palette} */ (row.name)] === undefined
        ? row.long
          ? '#8c959f'
          : '#0969da'
        : palette[/** @type {keyof typeof palette} */ (row.name)]
    parts.push(
      `<text x="${left}" y="${panelTop - 5}" font-weight="600">${esc(row.label)}</text>`,
      `<text x="${width - right}" y="${panelTop - 5}" text-anchor="end" fill="#57606a">${esc(`p50 ${fixed(row.p50)} · p99 ${fixed(row.p99)} · max ${fixed(row.max)} ms · ${row.tokenRequests} token requests · ${row.failed} failed`)}</text>`,
      `<rect x="${left}" y="${panelTop}" width="${plotWidth}" height="${panelHeight}" fill="#f6f8fa" stroke="#d0d7de"/>`,
    )
    for (let tick = 1; tick <= yMax; tick *= 10) {
      const ty = y(tick, panelTop)
      parts.push(
        `<line x1="${left}" x2="${left + plotWidth}" y1="${ty.toFixed(1)}" y2="${ty.toFixed(1)}" stroke="#d0d7de" stroke-dasharray="2 3"/>`,
        `<text x="${left - 6}" y="${(ty + 4).toFixed(1)}" text-anchor="end" fill="#57606a">${tick} ms</text>`,
      )
    }
    for (const t of row.tokenTimes) {
      parts.push(
        `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${panelTop}" y2="${panelTop + panelHeight}" stroke="#8250df" stroke-width="1.5" stroke-dasharray="4 3"/>`,
      )
    }
    const buckets = new Float64Array(Math.ceil(durationMs / bucketMs)).fill(Number.NaN)
    for (let i = 0; i < row.at.length; i++) {
      const b = Math.min(
        buckets.length - 1,
        Math.floor(/** @type {number} */ (row.at[i]) / bucketMs),
      )
      const value = /** @type {number} */ (row.latency[i])
      if (!((buckets[b] ?? Number.NaN) >= value)) buckets[b] = value
    }
    const points = []
    for (let b = 0; b < buckets.length; b++) {
      const value = /** @type {number} */ (buckets[b])
      if (Number.isNaN(value)) continue
      points.push(`${x((b + 0.5) * bucketMs).toFixed(1)},${y(value, panelTop).toFixed(1)}`)
    }
    parts.push(
      `<polyline points="${points.join(' ')}" fill="none" stroke="${color}" stroke-width="1.6" stroke-linejoin="round"/>`,
    )
  })
  const axisTop = top + rows.length * (panelHeight + gap) + 2
  for (let s = 0; s <= rollover.seconds; s++) {
    parts.push(
      `<text x="${x(s * 1000).toFixed(1)}" y="${axisTop}" text-anchor="middle" fill="#57606a">${s} s</text>`,
    )
  }
  parts.push(
    `<line x1="${left}" x2="${left + 24}" y1="${axisTop + 16}" y2="${axisTop + 16}" stroke="#8250df" stroke-width="1.5" stroke-dasharray="4 3"/>`,
    `<text x="${left + 30}" y="${axisTop + 20}" fill="#57606a">a token request reaching the endpoint</text>`,
    '</svg>',
  )
  return `${parts.join('\n')}\n`
}

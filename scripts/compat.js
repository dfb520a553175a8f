// The compatibility matrix: Node versions × undici majors × ways of sending a request.
//
//   npm run test:compat                     # builds, then the full matrix (Node 20–26 × undici 7/8)
//   COMPAT_MATRIX=ci node scripts/compat.js # the reduced matrix CI runs
//
// Each cell is one child process, `node compat/cell.js <undici7|undici8> <path>`, on the Node
// binary of that row (other majors come from the npm `node` package through npx, never a global
// install). It prints the matrix, writes it as markdown (compat/results.md for the full matrix,
// compat/results-<matrix>.md otherwise) and exits non-zero on any failed cell.
//
// Environment:
//   COMPAT_MATRIX   full (default) | ci: Node 20 and 24 × undici 7, Node 24 × undici 8
//   COMPAT_NODES    comma-separated majors to run instead, e.g. 22,26
//   COMPAT_JOBS     cells run at once (default: available parallelism, at least 2)
//   COMPAT_SUMMARY  write { passed, failed, skipped, seconds } as JSON to this file (CI counts)
//   COMPAT_CELL_TIMEOUT  ms before a cell is killed and counted as failed (default 90 000)
//   COMPAT_BUDGET   s after which no further cell starts; those left count as failed
//                   (default 300 for the ci matrix, none for full)
//   COMPAT_RESULTS  where the markdown goes
import { execFile, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const cellScript = join(root, 'compat', 'cell.js')

/** Most time one cell may take before it is killed and counted as a failure. */
const cellTimeout = Number(process.env.COMPAT_CELL_TIMEOUT) || 90_000
/** Most time resolving (downloading) one Node version may take. */
const nodeTimeout = 300_000

const columns = [
  ['request', 'request', '`undici.request(url, { dispatcher })`'],
  ['undici-fetch', 'undici fetch', 'undici’s `fetch(url, { dispatcher })`'],
  ['fetch-dispatcher', 'fetch + dispatcher', 'built-in `fetch(url, { dispatcher })`'],
  [
    'fetch-wrapper',
    'fetch + Dispatcher1Wrapper',
    'built-in `fetch(url, { dispatcher: new Dispatcher1Wrapper(agent) })`',
  ],
  [
    'fetch-global',
    'fetch, global',
    'built-in `fetch` after `setGlobalDispatcher(new Agent().compose(accessToken(…)))`',
  ],
  [
    'fetch-global-builtin',
    'fetch, global on Node’s',
    'built-in `fetch` after `setGlobalDispatcher(getGlobalDispatcher().compose(accessToken(…)))`, where built-in `fetch` ran first so the global dispatcher is Node’s own',
  ],
  [
    'interceptors',
    'interceptors',
    '`undici.request` with `accessToken()` composed with `retry()`, `redirect()`, `dns()`, `cache()`, `decompress()`, in both orders (compat/compose.js)',
  ],
]

const matrices = {
  full: { nodes: [20, 22, 24, 26], undicis: ['undici7', 'undici8'] },
  ci: {
    nodes: [20, 24],
    undicis: ['undici7', 'undici8'],
    only: (node, undici) => undici === 'undici7' || node === 24,
  },
}

const matrixName = process.env.COMPAT_MATRIX || 'full'
const matrix = matrices[matrixName]
if (!matrix) {
  console.error(`COMPAT_MATRIX must be one of ${Object.keys(matrices).join(', ')}`)
  process.exit(2)
}
const nodes = process.env.COMPAT_NODES
  ? process.env.COMPAT_NODES.split(',').map((major) => Number(major.trim()))
  : matrix.nodes
const jobs = Number(process.env.COMPAT_JOBS) || Math.max(2, os.availableParallelism?.() ?? 2)
const resultsFile =
  process.env.COMPAT_RESULTS ||
  join(root, 'compat', matrixName === 'full' ? 'results.md' : `results-${matrixName}.md`)
// The reduced matrix is what CI promises to test: a Node version it cannot get is a failure.
const unavailableFails = matrixName !== 'full'

const started = Date.now()
const budget = Number(process.env.COMPAT_BUDGET) || (matrixName === 'full' ? 0 : 300)
const overBudget = () => budget > 0 && Date.now() - started > budget * 1000

/** The path of a Node binary of this major: this one, or the npm `node` package's via npx. */
function resolveNode(major) {
  if (Number(process.versions.node.split('.')[0]) === major) {
    return Promise.resolve({ major, bin: process.execPath, version: process.version })
  }
  return new Promise((resolve) => {
    execFile(
      'npx',
      ['-y', '-p', `node@${major}`, 'node', '-p', 'process.execPath + " " + process.version'],
      { cwd: os.tmpdir(), timeout: nodeTimeout, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const [bin, version] = stdout.trim().split('\n').at(-1)?.split(' ') ?? []
        if (error || !bin || !version?.startsWith(`v${major}.`)) {
          const why = error?.killed ? 'timed out' : (stderr || error?.message || stdout).trim()
          resolve({ major, unavailable: `npx -p node@${major} failed: ${why.split('\n').at(-1)}` })
        } else {
          resolve({ major, bin, version })
        }
      },
    )
  })
}

/** `>=x.y.z` ranges only (what undici's engines say); anything else is taken as satisfied. */
function satisfies(version, range) {
  const match = /^>=\s*(\d+)\.(\d+)\.(\d+)$/.exec(range?.trim() ?? '')
  if (!match) return true
  const have = version.replace(/^v/, '').split('.').map(Number)
  const want = match.slice(1).map(Number)
  for (let i = 0; i < 3; i++) {
    if (have[i] !== want[i]) return have[i] > want[i]
  }
  return true
}

function undiciPackage(alias) {
  return JSON.parse(readFileSync(join(root, 'node_modules', alias, 'package.json'), 'utf8'))
}

/** Runs one cell in its own process; never rejects. */
function runCell(bin, alias, path) {
  return new Promise((resolve) => {
    const child = spawn(bin, [cellScript, alias, path], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, cellTimeout)
    const cellStarted = Date.now()
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const ms = Date.now() - cellStarted
      if (timedOut) {
        resolve({ crashed: `timeout: killed after ${cellTimeout / 1000} s`, ms })
        return
      }
      try {
        resolve({ ...JSON.parse(stdout.trim().split('\n').at(-1)), ms })
      } catch {
        const lines = stderr.trim().split('\n')
        const why = lines.find((text) => /^\w*Error\b|^Error \[/.test(text)) ?? lines.at(-1)
        resolve({ crashed: `exit ${code ?? signal}: ${why || 'no output'}`, ms })
      }
    })
    child.on('error', (error) => {
      clearTimeout(timer)
      resolve({ crashed: `spawn failed: ${error.message}`, ms: 0 })
    })
  })
}

/**
 * pass: every check passed. fail: a check failed and the same requests without accessToken()
 * work. n/a: undici itself does not do this (the control failed too, or the API is missing).
 */
function verdict(result) {
  if (result.crashed) return { status: 'fail', reason: result.crashed }
  if (result.unsupported) return { status: 'n/a', reason: result.unsupported }
  const failed = result.checks.filter((check) => !check.ok)
  const controlFailed = result.control && !result.control.ok
  if (failed.length === 0) {
    return controlFailed
      ? {
          status: 'pass',
          reason: `without accessToken() undici fails here: ${result.control.error}`,
        }
      : { status: 'pass' }
  }
  if (controlFailed) {
    return { status: 'n/a', reason: `undici itself fails here: ${result.control.error}` }
  }
  return {
    status: 'fail',
    reason: failed.map((check) => `${check.name}: ${check.error}`).join('; '),
  }
}

async function pool(tasks, size) {
  const results = new Array(tasks.length)
  let next = 0
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++
      results[index] = await tasks[index]()
    }
  }
  await Promise.all(Array.from({ length: Math.min(size, tasks.length) }, worker))
  return results
}

const undicis = Object.fromEntries(
  matrix.undicis.map((alias) => {
    const pkg = undiciPackage(alias)
    return [alias, { version: pkg.version, engines: pkg.engines?.node }]
  }),
)
console.log(
  `compat: matrix ${matrixName}; Node ${nodes.join(', ')} × ${matrix.undicis
    .map((alias) => `undici ${undicis[alias].version}`)
    .join(', ')}; ${jobs} at once`,
)
const binaries = await Promise.all(nodes.map(resolveNode))

const rows = []
const tasks = []
for (const node of binaries) {
  for (const alias of matrix.undicis) {
    if (matrix.only && !matrix.only(node.major, alias)) continue
    const { version, engines } = undicis[alias]
    const row = {
      node: node.version ?? `${node.major}.x`,
      bundled: undefined,
      undici: version,
      cells: {},
    }
    rows.push(row)
    for (const [path] of columns) {
      if (node.unavailable) {
        row.cells[path] = { status: 'unavailable', reason: node.unavailable }
      } else if (!satisfies(node.version, engines)) {
        row.cells[path] = {
          status: 'n/a',
          reason: `undici ${version} requires Node ${engines} (engines); it does not load on ${node.version}`,
        }
      } else {
        tasks.push(async () => {
          const result = overBudget()
            ? { crashed: `not run: the ${budget} s budget (COMPAT_BUDGET) was spent`, ms: 0 }
            : await runCell(node.bin, alias, path)
          row.bundled ??= result.bundledUndici
          row.cells[path] = { ...verdict(result), ms: result.ms, result }
          const { status } = row.cells[path]
          console.log(
            `  ${node.version} × undici ${version} × ${path}: ${status} (${result.ms} ms)`,
          )
        })
      }
    }
  }
}
await pool(tasks, jobs)

/** What a known undici error in a footnote means. */
const explanations = [
  [
    'invalid onRequestStart method',
    'Built-in fetch on Node ≤ 24 hands its dispatcher legacy (onConnect…) handlers, and undici 8 accepts only the new API: a plain undici 8 Agent fails (the control run, without accessToken()). accessToken() adapts the handler, so a composed agent works; the documented path is `new Dispatcher1Wrapper(agent)` or undici’s own `fetch`.',
  ],
]

// Footnotes: one per distinct reason, numbered in order of appearance.
const footnotes = []
function mark(cell) {
  if (!cell.reason || cell.status === 'fail') return ''
  const known = explanations.find(([signature]) => cell.reason.includes(signature))
  const text = known ? `${known[1]} (${cell.reason})` : cell.reason
  let index = footnotes.indexOf(text)
  if (index === -1) index = footnotes.push(text) - 1
  return ` [${index + 1}]`
}
const label = {
  pass: 'pass',
  fail: '**FAIL**',
  'n/a': 'n/a (undici)',
  unavailable: 'unavailable',
}
/**
 * The DPoP column: the DPoP check (compat/dpop.js) across the row's cells — pass when it
 * passed in every cell that ran it, the paths where it failed otherwise; a row where no cell
 * ran (undici does not load) takes the first cell's status and reason.
 */
function dpopColumn(row) {
  const ran = []
  const failed = []
  for (const [path] of columns) {
    for (const check of row.cells[path].result?.checks ?? []) {
      if (!check.name.startsWith('DPoP')) continue
      ran.push(path)
      if (!check.ok) failed.push(path)
    }
  }
  if (failed.length > 0) return `${label.fail} (${failed.join(', ')})`
  if (ran.length > 0) return `pass (${ran.length} paths)`
  const first = row.cells[columns[0][0]]
  return `${label[first.status]}${mark(first)}`
}

const table = [
  `| Node × undici | ${columns.map(([, title]) => title).join(' | ')} | DPoP |`,
  `| --- | ${columns.map(() => '---').join(' | ')} | --- |`,
]
const plain = []
for (const row of rows) {
  const name = `Node ${row.node.replace(/^v/, '')} × undici ${row.undici}`
  const cells = columns.map(([path]) => `${label[row.cells[path].status]}${mark(row.cells[path])}`)
  cells.push(dpopColumn(row))
  table.push(`| ${name} | ${cells.join(' | ')} |`)
  plain.push([name, ...cells])
}

const counts = { passed: 0, failed: 0, skipped: 0 }
const failures = []
const notes = new Map()
for (const row of rows) {
  for (const [path] of columns) {
    const cell = row.cells[path]
    const where = `Node ${row.node.replace(/^v/, '')} × undici ${row.undici} × ${path}`
    if (cell.status === 'pass') counts.passed++
    else if (cell.status === 'fail' || (cell.status === 'unavailable' && unavailableFails)) {
      counts.failed++
      failures.push(`${where}: ${cell.reason}`)
    } else counts.skipped++
    for (const check of cell.result?.checks ?? []) {
      if (!check.note) continue
      const key = `${check.name}: ${check.note}`
      notes.set(key, [
        ...(notes.get(key) ?? []),
        `Node ${row.node.replace(/^v/, '')} × undici ${row.undici}`,
      ])
    }
    if (cell.result?.note) {
      const key = `${path}: ${cell.result.note}`
      notes.set(key, [
        ...(notes.get(key) ?? []),
        `Node ${row.node.replace(/^v/, '')} × undici ${row.undici}`,
      ])
    }
  }
}

const seconds = ((Date.now() - started) / 1000).toFixed(1)
const cpus = os.cpus()
const machine = `${os.type()} ${os.release()} ${os.arch()}, ${cpus.length} × ${cpus[0]?.model?.trim() ?? 'cpu'}`
const bundled = rows
  .filter((row) => row.bundled)
  .map((row) => `Node ${row.node.replace(/^v/, '')} bundles undici ${row.bundled}`)
const markdown = [
  `# Compatibility matrix (${matrixName})`,
  '',
  `Run ${new Date().toISOString()} on ${machine}; ${seconds} s; \`${matrixName === 'full' ? 'npm run test:compat' : `COMPAT_MATRIX=${matrixName} npm run test:compat`}\`.`,
  `${[...new Set(bundled)].join('; ')}.`,
  '',
  ...table,
  '',
  ...footnotes.map((text, i) => `[${i + 1}] ${text}`),
  ...(footnotes.length ? [''] : []),
  'Columns:',
  '',
  ...columns.map(([, title, description]) => `- **${title}**: ${description}`),
  '- **DPoP**: the DPoP check (below) in every cell of the row that ran: pass, or the paths where it failed',
  '',
  'Every request-path cell checks: cold single flight (one token request for 10 concurrent',
  'requests), 401 renewal with a string POST body and with a streamed body, an abort during the',
  'token fetch, another origin getting no token, and redirects carrying the token on same-origin',
  'hops only. A failed cell is run again without `accessToken()` (the control): if that fails too,',
  'the cell is n/a (undici).',
  '',
  'Every cell also runs the DPoP check (RFC 9449, compat/dpop.js), for ES256 and for EdDSA with a',
  'fresh key: `accessToken({ dpop: { key } })` through the cell’s path (the interceptors cell: inside',
  '`retry()` and `redirect()`, `dns()` inside it) against a loopback token endpoint answering',
  '`token_type: DPoP` and a loopback API. Both verify every proof with node:crypto (signature under',
  'the embedded public JWK, typ, htm, htu without the query, iat, a jti never seen, `ath` at the API,',
  'the token bound to the proof’s key) and want their own nonce: a GET must cost exactly one',
  '`use_dpop_nonce` round trip at each (400, then 200; 401, then 200, the token kept), and a POST',
  'after it none.',
  '',
  ...(notes.size
    ? [
        '## Documented limitations seen (not failures)',
        '',
        ...[...notes].map(([text, where]) => `- ${text} (${[...new Set(where)].join('; ')})`),
        '',
      ]
    : []),
  ...(failures.length ? ['## Failures', '', ...failures.map((line) => `- ${line}`), ''] : []),
].join('\n')
writeFileSync(resultsFile, markdown)

// The matrix on the terminal, columns by their short names.
const header = ['Node × undici', ...columns.map(([path]) => path), 'dpop']
const widths = header.map((title, i) =>
  Math.max(title.length, ...plain.map((line) => line[i].length)),
)
const line = (cells) => cells.map((cell, i) => cell.padEnd(widths[i])).join('  ')
console.log(`\n${line(header)}\n${line(widths.map((w) => '-'.repeat(w)))}`)
for (const cells of plain) console.log(line(cells))
console.log('')
footnotes.forEach((text, i) => {
  console.log(`[${i + 1}] ${text}`)
})
for (const failure of failures) console.log(`FAIL ${failure}`)
console.log(
  `\ncompat: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} n/a in ${seconds} s; ${relative(root, resultsFile)} written`,
)
if (process.env.COMPAT_SUMMARY) {
  writeFileSync(process.env.COMPAT_SUMMARY, JSON.stringify({ ...counts, seconds: Number(seconds) }))
}
process.exitCode = counts.failed > 0 ? 1 : 0

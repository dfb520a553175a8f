// @ts-check
// `npm run faults`: runs the fault suite against real loopback servers and prints
// one row per scenario. Exits non-zero if any bound is broken.
import { runAll } from './scenarios.js'

const columns = [
  ['scenario', 'scenario'],
  ['requests', 'requests'],
  ['succeeded', 'ok'],
  ['failedClearly', 'failed clearly'],
  ['failedOther', 'failed otherwise'],
  ['tokenRequests', 'token requests'],
  ['unauthenticatedHits', 'API hits w/o valid token'],
  ['waitedAfterFirst', 'waited for token'],
  ['secretsSeen', 'secrets seen'],
]

process.stderr.write('running the fault suite (about 30 s)…\n')
let broken = 0
const rows = await runAll((row) => {
  const failed = Object.entries(row.checks).filter(([, ok]) => !ok)
  broken += failed.length + (row.secretsSeen > 0 ? 1 : 0)
  process.stderr.write(
    `  ${failed.length === 0 ? 'ok  ' : 'FAIL'} ${row.scenario}${failed.length ? ` — ${failed.map(([name]) => name).join('; ')}` : ''}\n`,
  )
})

console.log(`| ${columns.map(([, title]) => title).join(' | ')} | notes |`)
console.log(
  `| ${columns.map(([key]) => (key === 'scenario' ? '---' : '---:')).join(' | ')} | --- |`,
)
for (const row of rows) {
  const cells = columns.map(([key]) => String(row[/** @type {keyof typeof row} */ (key)]))
  console.log(`| ${cells.join(' | ')} | ${row.notes} |`)
}
console.log(
  `\n${new Date().toISOString().slice(0, 10)}, Node ${process.version}; ${broken === 0 ? 'every bound held' : `${broken} bound(s) broken`}`,
)
process.exitCode = broken === 0 ? 0 : 1

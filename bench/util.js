// @ts-check
// Shared helpers of the benchmark: its processes, a progress line, statistics.
import { fork } from 'node:child_process'
import { once } from 'node:events'

/**
 * @typedef {object} ServerStats
 * @property {number} tokenRequests
 * @property {number[]} tokenTimes  epoch ms at which each token request arrived
 * @property {number} apiHits
 * @property {number} unauthenticated  API hits without a token the endpoint issued
 * @property {number} expired          API hits with an expired token
 */

/**
 * Forks one of the benchmark's processes and talks to it over IPC: `call(cmd, args)` resolves
 * with what the child's handler for `cmd` returned (see `serve`).
 * @param {string} file  relative to bench/
 * @param {{ args?: string[], execArgv?: string[] }} [options]
 * @returns {Promise<{ ready: any, call(cmd: string, args?: Record<string, unknown>): Promise<any>, close(): Promise<void> }>}
 */
export async function forkProcess(file, options = {}) {
  const child = fork(new URL(file, import.meta.url), options.args ?? [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: options.execArgv ?? [],
  })
  const exited = once(child, 'exit')
  const [ready] = await Promise.race([
    once(child, 'message'),
    exited.then(() => {
      throw new Error(`bench/${file} exited before it was ready`)
    }),
  ])
  let nextId = 0
  /** @type {Map<number, { resolve: (value: any) => void, reject: (error: Error) => void }>} */
  const pending = new Map()
  child.on('message', (message) => {
    const reply = /** @type {{ id: number, ok: boolean, value?: unknown, error?: string }} */ (
      message
    )
    const waiter = pending.get(reply.id)
    if (waiter === undefined) return
    pending.delete(reply.id)
    if (reply.ok) waiter.resolve(reply.value)
    else waiter.reject(new Error(reply.error))
  })
  void exited.then(() => {
    for (const waiter of pending.values()) waiter.reject(new Error(`bench/${file} exited`))
    pending.clear()
  })
  return {
    ready,
    call: (cmd, args = {}) =>
      new Promise((resolve, reject) => {
        const id = nextId++
        pending.set(id, { resolve, reject })
        child.send({ id, cmd, ...args })
      }),
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.disconnect()
      await exited
    },
  }
}

/**
 * The child's side of `forkProcess`: answers each command with its handler's (awaited) value,
 * says it is ready with `ready`, and exits when the parent goes away.
 * @param {Record<string, (args: any) => unknown>} handlers
 * @param {unknown} ready
 */
export function serve(handlers, ready = {}) {
  process.on('message', async (message) => {
    const { id, cmd, ...args } = /** @type {{ id: number, cmd: string }} */ (message)
    try {
      const handler = handlers[cmd]
      if (handler === undefined) throw new Error(`unknown command ${cmd}`)
      process.send?.({ id, ok: true, value: await handler(args) })
    } catch (error) {
      process.send?.({ id, ok: false, error: String(/** @type {Error} */ (error)?.stack ?? error) })
    }
  })
  process.on('disconnect', () => process.exit(0))
  process.send?.(ready)
}

/**
 * Forks bench/servers.js and returns its origins and its controls.
 * @returns {Promise<Servers>}
 */
export async function startServers() {
  const child = await forkProcess('./servers.js')
  return {
    ...child.ready.origins,
    configure: (options) => child.call('configure', options),
    stats: () => child.call('stats'),
    close: () => child.close(),
  }
}

/**
 * @typedef {{ idp: string, api: string, fast: string,
 *   configure(options: { lifetime: number, tokenDelay: number }): Promise<void>,
 *   stats(): Promise<ServerStats>, close(): Promise<void> }} Servers
 */

const started = performance.now()
const interactive = process.stderr.isTTY === true
let lastWrite = 0

/** One short progress line on stderr: rewritten in place on a terminal, throttled otherwise. */
export function progress(/** @type {string} */ text, force = false) {
  const elapsed = (performance.now() - started) / 1000
  const line = `[bench ${Math.floor(elapsed / 60)}:${String(Math.floor(elapsed % 60)).padStart(2, '0')}] ${text}`
  const now = performance.now()
  if (!force && now - lastWrite < (interactive ? 200 : 5_000)) return
  lastWrite = now
  process.stderr.write(interactive ? `\r\x1b[K${line}` : `${line}\n`)
}

/** Ends the progress line so that what follows starts on a fresh line. */
export function progressDone() {
  if (interactive) process.stderr.write('\r\x1b[K')
}

/** Seconds since the benchmark started. */
export function elapsedSeconds() {
  return (performance.now() - started) / 1000
}

/** @param {number[]} values */
export function median(values) {
  const sorted = values.toSorted((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  const upper = sorted[middle] ?? Number.NaN
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2
}

/** Nearest-rank percentile of a sorted array. @param {number[]} sorted @param {number} p */
export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return /** @type {number} */ (sorted[rank])
}

/** `12 345` */
export function int(/** @type {number} */ value) {
  return Number.isFinite(value)
    ? Math.round(value)
        .toString()
        .replace(/\B(?=(\d{3})+(?!\d))/g, ' ')
    : '–'
}

/** A markdown table. @param {string[]} head @param {unknown[][]} rows */
export function table(head, rows) {
  const line = (/** @type {unknown[]} */ cells) => `| ${cells.map(String).join(' | ')} |`
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n')
}

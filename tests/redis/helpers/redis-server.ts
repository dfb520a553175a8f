import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A private redis-server on 127.0.0.1, started by a test file and stopped by it. */
export interface RedisServer {
  readonly port: number
  /** Stops the server (SIGTERM, then SIGKILL); its data is gone (no persistence). */
  stop(): Promise<void>
  /** Starts it again on the same port, empty. */
  start(): Promise<void>
  /** Stops it for good and removes its directory. */
  dispose(): Promise<void>
}

/** Every server started by this process, killed if the process exits without stopping them. */
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/** A free TCP port on 127.0.0.1 (free when asked: bind it soon, and retry if taken). */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** How to run one redis-server beyond its port and directory. */
export interface SpawnOptions {
  /** A config file, first on the command line (a Sentinel needs one it can rewrite). */
  config?: string
  /** More arguments, e.g. `['--cluster-enabled', 'yes']` or `['--sentinel']`. */
  args?: readonly string[]
  /** The log line that says it is ready; default 'Ready to accept connections'. */
  readyLine?: string
}

/**
 * Spawns redis-server on `port`; resolves once it is ready (at most 10 s). Killed with
 * this process if it is still running when the process exits.
 */
export async function spawnRedis(
  port: number,
  dir: string,
  options: SpawnOptions = {},
): Promise<ChildProcess> {
  const readyLine = options.readyLine ?? 'Ready to accept connections'
  const child = spawn(
    'redis-server',
    [
      ...(options.config === undefined ? [] : [options.config]),
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--logfile',
      '',
      ...(options.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  running.add(child)
  child.once('exit', () => running.delete(child))
  let output = ''
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`redis-server did not start within 10 s:\n${output}`))
    }, 10_000)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      if (output.includes(readyLine)) {
        clearTimeout(timer)
        child.stdout?.off('data', onData)
        resolve()
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(
        new Error(
          `cannot run redis-server (is it installed? .ci/run installs it): ${error.message}`,
        ),
      )
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`redis-server exited with ${String(code)} before it was ready:\n${output}`))
    })
  })
  try {
    await ready
  } catch (error) {
    child.kill('SIGKILL')
    throw error
  }
  child.stdout?.resume() // keep draining its log so it never blocks on a full pipe
  child.stderr?.resume()
  return child
}

/** SIGTERM, then SIGKILL after 3 s; resolves once it has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000)
  await exited
  clearTimeout(timer)
}

/**
 * Starts `redis-server --port <free port> --save '' --appendonly no` on 127.0.0.1
 * in a temporary directory. A port taken between choosing and binding it is retried.
 */
export async function startRedisServer(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'uat-redis-'))
  let port = 0
  let child: ChildProcess | undefined
  for (let attempt = 1; child === undefined; attempt++) {
    port = await freePort()
    try {
      child = await spawnRedis(port, dir)
    } catch (error) {
      if (attempt >= 3) throw error
    }
  }
  let current: ChildProcess | undefined = child
  const stop = async (): Promise<void> => {
    if (current !== undefined) await stopChild(current)
    current = undefined
  }
  return {
    port,
    stop,
    async start() {
      if (current !== undefined) throw new Error('redis-server is running already')
      current = await spawnRedis(port, dir)
    },
    async dispose() {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { ClientKind, RedisTarget } from '../fixtures/clients.js'

const fixture = fileURLToPath(new URL('../fixtures/worker.js', import.meta.url))

/** What fixtures/worker.js reads from its argument. */
export interface WorkerConfig {
  /** 'memory': memoryStore(), no Redis — what replicas do without redisStore. */
  kind: ClientKind | 'memory'
  /** The one redis-server's port; `redis` instead for a cluster or Sentinel. */
  redisPort?: number
  redis?: RedisTarget
  /** The protected API's origin. */
  api: string
  tokenUrl: string
  prefix: string
  lockTtl?: number
  /** base64 of 32 bytes */
  encryptionKey?: string
  /** Extra TokenCache options, e.g. `{ minRenewalInterval: 0 }`. */
  cache?: Record<string, number>
  /**
   * 'background': the worker does not wait for its Redis client before serving (the
   * README's ioredis example; node-redis with `connect()` not awaited). Default: it
   * waits until the client is ready.
   */
  connect?: 'await' | 'background'
  /** Send this many requests at start, as soon as the interceptor exists: see `Worker.startBurst`. */
  startBurst?: number
}

export interface StartBurstResult extends BurstResult {
  /** Whether the Redis client was ready when the start burst began. */
  readyAtStart: boolean
}

export interface BurstResult {
  statuses: number[]
  errors: string[]
  /** Ms the slowest request of the burst took, from sending to its body's end. */
  slowest: number
}

/** One replica: a child process with its own interceptor, TokenCache, Redis client and store. */
export interface Worker {
  readonly index: number
  readonly child: ChildProcess
  /** Everything it wrote to stderr. */
  readonly stderr: () => string
  /** `count` concurrent requests to `${api}${path}/…`; their statuses (0 = failed) and errors. */
  burst(count: number, path?: string): Promise<BurstResult>
  /** With `startBurst`: the burst sent at start (bounded; a worker that exits or times out reports an error). */
  startBurst(): Promise<StartBurstResult>
  /** Whether its Redis client is connected. */
  redisReady(): Promise<boolean>
  /** Whether it is still running. */
  alive(): boolean
  close(): Promise<void>
}

let nextId = 0

/** Most ms `startWorkers` waits for its replicas to serve; test files give their hooks more. */
export const startLimit = 30_000

function startWorker(index: number, config: WorkerConfig): Worker {
  const child = fork(fixture, [JSON.stringify({ ...config, index })], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  // Listening from the start: the start burst may end before anyone asks for it.
  const startBurst = new Promise<StartBurstResult>((resolve) => {
    const failed = (error: string): StartBurstResult => ({
      readyAtStart: false,
      statuses: [],
      slowest: 0,
      errors: [`worker ${index}: ${error}\n${stderr}`],
    })
    if (config.startBurst === undefined) {
      resolve(failed('started without startBurst'))
      return
    }
    // From the fork: the process must start (startLimit), then the burst end (15 s).
    const limit = startLimit + 15_000
    const timer = setTimeout(() => resolve(failed(`no start burst in ${limit} ms`)), limit)
    child.on('message', (message: { type?: string } & StartBurstResult) => {
      if (message.type !== 'start-burst') return
      clearTimeout(timer)
      resolve(message)
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve(failed(`exited (${code ?? signal})`))
    })
  })
  const ask = <T>(message: Record<string, unknown>, timeoutMs: number): Promise<T> => {
    const id = nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup()
        reject(
          new Error(
            `worker ${index} did not answer ${String(message.type)} in ${timeoutMs} ms\n${stderr}`,
          ),
        )
      }, timeoutMs)
      const onMessage = (reply: { id?: number } & T): void => {
        if (reply.id !== id) return
        cleanup()
        resolve(reply)
      }
      const onExit = (code: number | null, signal: string | null): void => {
        cleanup()
        reject(new Error(`worker ${index} exited (${code ?? signal})\n${stderr}`))
      }
      const cleanup = (): void => {
        clearTimeout(timer)
        child.off('message', onMessage)
        child.off('exit', onExit)
      }
      child.on('message', onMessage)
      child.once('exit', onExit)
      child.send({ ...message, id }, (error) => {
        if (error === null) return
        cleanup()
        reject(new Error(`worker ${index}: ${error.message}\n${stderr}`))
      })
    })
  }
  return {
    index,
    child,
    stderr: () => stderr,
    burst: (count, path = '/readers') => ask<BurstResult>({ type: 'burst', count, path }, 15_000),
    startBurst: () => startBurst,
    redisReady: async () => (await ask<{ ready: boolean }>({ type: 'status' }, 2_000)).ready,
    alive: () => child.exitCode === null && child.signalCode === null,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      if (child.connected)
        child.send({ type: 'close' }, () => {}) // it may be exiting on its own
      else child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000)
      await exited
      clearTimeout(timer)
    },
  }
}

/**
 * Starts `count` replicas and resolves once each is serving — connected to Redis
 * unless `connect: 'background'` — at most `startLimit`. A bound, not a measurement:
 * 8 Node processes loading undici, ioredis and redis on 2 busy cores take seconds.
 */
export async function startWorkers(count: number, config: WorkerConfig): Promise<Worker[]> {
  const workers = Array.from({ length: count }, (_, index) => startWorker(index, config))
  try {
    await Promise.all(
      workers.map(async (worker) => {
        const ready = new Promise<void>((resolve, reject) => {
          worker.child.on('message', (message: { type?: string }) => {
            if (message.type === 'ready') resolve()
          })
          worker.child.once('exit', (code) =>
            reject(
              new Error(`worker ${worker.index} exited (${code}) before ready\n${worker.stderr()}`),
            ),
          )
        })
        let timer: NodeJS.Timeout | undefined
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(
                  `worker ${worker.index} not ready in ${startLimit} ms\n${worker.stderr()}`,
                ),
              ),
            startLimit,
          )
        })
        try {
          await Promise.race([ready, timeout])
        } finally {
          clearTimeout(timer)
        }
      }),
    )
  } catch (error) {
    await stopWorkers(workers).catch(() => {})
    throw error
  }
  return workers
}

export async function stopWorkers(workers: readonly Worker[] | undefined): Promise<void> {
  await Promise.all((workers ?? []).map((worker) => worker.close()))
}

/** Waits until every live worker's Redis client is connected again (bounded). */
export async function waitForRedis(workers: readonly Worker[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ready = await Promise.all(workers.filter((w) => w.alive()).map((w) => w.redisReady()))
    if (ready.every(Boolean)) return
    if (Date.now() > deadline)
      throw new Error(`workers' Redis clients not ready in ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** The client id a token request was made with (`worker-<index>` from Basic auth). */
export function requesterOf(authorization: string | undefined): string {
  const encoded = /^Basic (.+)$/.exec(authorization ?? '')?.[1]
  if (encoded === undefined) return '?'
  return decodeURIComponent(Buffer.from(encoded, 'base64').toString().split(':')[0] ?? '?')
}

import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { ClientKind } from '../fixtures/clients.js'

const fixture = fileURLToPath(new URL('../fixtures/worker.js', import.meta.url))

/** What fixtures/worker.js reads from its argument. */
export interface WorkerConfig {
  /** 'memory': memoryStore(), no Redis — what replicas do without redisStore. */
  kind: ClientKind | 'memory'
  redisPort: number
  /** The protected API's origin. */
  api: string
  tokenUrl: string
  prefix: string
  lockTtl?: number
  /** base64 of 32 bytes */
  encryptionKey?: string
  /** Extra TokenCache options, e.g. `{ minRenewalInterval: 0 }`. */
  cache?: Record<string, number>
}

export interface BurstResult {
  statuses: number[]
  errors: string[]
}

/** One replica: a child process with its own interceptor, TokenCache, Redis client and store. */
export interface Worker {
  readonly index: number
  readonly child: ChildProcess
  /** Everything it wrote to stderr. */
  readonly stderr: () => string
  /** `count` concurrent requests to `${api}${path}/…`; their statuses (0 = failed) and errors. */
  burst(count: number, path?: string): Promise<BurstResult>
  /** Whether its Redis client is connected. */
  redisReady(): Promise<boolean>
  /** Whether it is still running. */
  alive(): boolean
  close(): Promise<void>
}

let nextId = 0

function startWorker(index: number, config: WorkerConfig): Worker {
  const child = fork(fixture, [JSON.stringify({ ...config, index })], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
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

/** Starts `count` replicas and resolves once each has connected to Redis (at most 10 s). */
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
            () => reject(new Error(`worker ${worker.index} not ready in 10 s\n${worker.stderr()}`)),
            10_000,
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

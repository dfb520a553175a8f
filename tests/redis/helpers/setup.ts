// vitest hooks for the servers, clients and replicas a test file or suite shares: each
// starts its thing before all of the file's (or suite's) tests and stops it after all.
// What they return stands for the thing once the hook has started it: use it in tests
// and in hooks registered after it, not while the file is being collected.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll } from 'vitest'
import {
  type ApiServer,
  startApi,
  startTokenEndpoint,
  type TokenEndpoint,
} from '../../support/servers.js'
import { type ClientKind, type ConnectedClient, connectClient } from '../fixtures/clients.js'
import { type RedisServer, startRedisServer } from './redis-server.js'
import { startLimit, startWorkers, stopWorkers, type Worker, type WorkerConfig } from './workers.js'

/** `value()` once a hook has set it; a clear error before. */
function started<T>(what: string, value: () => T | undefined): () => T {
  return () => {
    const current = value()
    if (current === undefined) throw new Error(`${what} is not started yet (use it in a test)`)
    return current
  }
}

/** A redis-server of the file's own (startRedisServer), started before all and disposed of after all. */
export function useRedisServer(): RedisServer {
  let server: RedisServer | undefined
  beforeAll(async () => {
    server = await startRedisServer()
  })
  afterAll(async () => {
    await server?.dispose()
  })
  const current = started('the redis-server', () => server)
  return {
    get port() {
      return current().port
    },
    stop: () => current().stop(),
    start: () => current().start(),
    dispose: () => current().dispose(),
  }
}

/** A client of `kind` connected to `redis` before the suite's tests (connectClient), closed after them. */
export function useClient(kind: ClientKind, redis: RedisServer): ConnectedClient {
  let connected: ConnectedClient | undefined
  beforeAll(async () => {
    connected = await connectClient(kind, redis.port)
  })
  afterAll(async () => {
    await connected?.close()
  })
  const current = started(`the ${kind} client`, () => connected)
  return {
    get kind() {
      return current().kind
    },
    get client() {
      return current().client
    },
    isReady: () => current().isReady(),
    command: (args: string[]) => current().command(args),
    close: () => current().close(),
  } as ConnectedClient
}

/** The servers around a fleet of replicas (fixtures/worker.js processes). */
export interface RedisFleet {
  readonly redis: RedisServer
  /** The protected API. */
  readonly api: ApiServer
  readonly endpoint: TokenEndpoint
  /**
   * A replica config of `kind` on these servers, under a Redis prefix of its own
   * (`<name>-<kind>-<random>:`), with `options` on top.
   */
  workerConfig(kind: ClientKind, name: string, options?: Partial<WorkerConfig>): WorkerConfig
}

export interface RedisFleetOptions {
  /** Ms each token answer takes, as a real endpoint's do: replicas wait on a cold cache meanwhile. */
  tokenDelay: number
  /** false: no redis-server (replicas with memoryStore); `redis` is then unusable. Default true. */
  redis?: boolean
}

/** A redis-server, a protected API and a token endpoint, started before all and stopped after all. */
export function useRedisFleet(options: RedisFleetOptions): RedisFleet {
  let redis: RedisServer | undefined
  let api: ApiServer | undefined
  let endpoint: TokenEndpoint | undefined
  beforeAll(async () => {
    ;[redis, api, endpoint] = await Promise.all([
      options.redis === false ? undefined : startRedisServer(),
      startApi(),
      startTokenEndpoint(),
    ])
    const issue = endpoint.respond
    endpoint.respond = (n) => ({ ...issue(n), delay: options.tokenDelay })
  })
  afterAll(async () => {
    await Promise.all([redis?.dispose(), api?.close(), endpoint?.close()])
  })
  const fleet: RedisFleet = {
    get redis() {
      return started('the redis-server', () => redis)()
    },
    get api() {
      return started('the API', () => api)()
    },
    get endpoint() {
      return started('the token endpoint', () => endpoint)()
    },
    workerConfig: (kind, name, more = {}) => ({
      kind,
      redisPort: fleet.redis.port,
      api: fleet.api.origin,
      tokenUrl: fleet.endpoint.tokenUrl,
      prefix: `${name}-${kind}-${randomBytes(4).toString('hex')}:`,
      ...more,
    }),
  }
  return fleet
}

/**
 * `count` replicas with `config()`, started before the suite's tests (after the hooks
 * registered before this call) and stopped after them. The array is filled by that hook.
 */
export function useWorkers(count: number, config: () => WorkerConfig): readonly Worker[] {
  const workers: Worker[] = []
  beforeAll(async () => {
    workers.push(...(await startWorkers(count, config())))
  }, startLimit + 10_000)
  afterAll(async () => {
    await stopWorkers(workers)
  })
  return workers
}

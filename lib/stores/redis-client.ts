/*
 * The Redis clients `redisStore()` accepts — node-redis and ioredis, one server, Sentinel
 * (ioredis) or Cluster — typed by the part of each the store uses, and how to tell them
 * apart at run time. How commands are sent through each is redis-commander.ts.
 */

/** The EventEmitter methods the store uses to see a client's first connection settle. */
interface ClientEvents {
  on?(event: string, listener: () => void): unknown
  off?(event: string, listener: () => void): unknown
}

/**
 * The part of a node-redis client (`redis` 4–6, `createClient()`) this store uses.
 * Typed here, not imported: neither client is a dependency of the package.
 */
export interface NodeRedisClient extends ClientEvents {
  sendCommand(args: string[]): Promise<unknown>
  /** True while connected and past the handshake; false while (re)connecting or closed. */
  readonly isReady: boolean
  /** True from `connect()` until closed, reconnects included. */
  readonly isOpen?: boolean
}

/**
 * The part of a node-redis cluster client (`redis` 4.7–6, `createCluster()`) this store
 * uses: commands routed by their key's hash slot, and each primary's own client for
 * SCAN (a cursor belongs to one node: https://redis.io/docs/latest/commands/scan/).
 */
export interface NodeRedisCluster extends ClientEvents {
  /** Sends `args` to the node that owns `firstKey`'s slot, following MOVED and ASK. */
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: string[],
  ): Promise<unknown>
  /** True once the slots are known, until closed. */
  readonly isReady: boolean
  /** True from `connect()` until closed. */
  readonly isOpen: boolean
  /** The primaries, as the cluster knows them now. */
  readonly masters: readonly unknown[]
  /** The client of one of `masters`, connected. */
  nodeClient(node: unknown): Promise<{ sendCommand(args: string[]): Promise<unknown> }>
}

/**
 * The part of an ioredis client (`ioredis` 5–6, `new Redis()`, with or without
 * `sentinels`) this store uses.
 */
export interface IoRedisClient extends ClientEvents {
  call(command: string, ...args: string[]): Promise<unknown>
  /** `'ready'` when usable; `'wait'` before a lazy connect; others while (re)connecting or closed. */
  readonly status: string
  readonly options?: { readonly keyPrefix?: string | undefined } | undefined
  /** Starts the connection of a `lazyConnect` client (`'wait'`). */
  connect?(): Promise<unknown>
}

/**
 * The part of an ioredis cluster client (`new Cluster()`) this store uses: an ioredis
 * client that routes each command by its key's slot, and its primaries for SCAN.
 */
export interface IoRedisCluster extends IoRedisClient {
  /** The connections to the cluster's nodes of one role; the store asks for `'master'`. */
  nodes(role: 'master'): readonly IoRedisClient[]
}

/** A node-redis or an ioredis client or cluster client, connected (or connecting) by the caller. */
export type RedisClient = NodeRedisClient | NodeRedisCluster | IoRedisClient | IoRedisCluster

export function isIoRedis(client: RedisClient): client is IoRedisClient {
  return (
    typeof (client as Partial<IoRedisClient>).call === 'function' &&
    typeof (client as Partial<IoRedisClient>).status === 'string'
  )
}

export function isIoRedisCluster(client: IoRedisClient): client is IoRedisCluster {
  return typeof (client as Partial<IoRedisCluster>).nodes === 'function'
}

export function isNodeRedis(client: RedisClient): client is NodeRedisClient | NodeRedisCluster {
  return (
    typeof (client as Partial<NodeRedisClient>).sendCommand === 'function' &&
    typeof (client as Partial<NodeRedisClient>).isReady === 'boolean'
  )
}

export function isNodeRedisCluster(
  client: NodeRedisClient | NodeRedisCluster,
): client is NodeRedisCluster {
  return (
    typeof (client as Partial<NodeRedisCluster>).nodeClient === 'function' &&
    Array.isArray((client as Partial<NodeRedisCluster>).masters)
  )
}

/** node-redis `createSentinel()`: its `sendCommand(isReadonly, args)` is neither shape above. */
export function isNodeRedisSentinel(client: RedisClient): boolean {
  const candidate = client as { acquire?: unknown; getMasterNode?: unknown }
  return typeof candidate.acquire === 'function' && typeof candidate.getMasterNode === 'function'
}

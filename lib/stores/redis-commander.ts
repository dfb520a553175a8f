/*
 * Raw commands through any client redis-client.ts accepts: one `RedisCommander` per
 * client kind, each refusing a command at once while its client is not ready, and
 * rethrowing the client's errors without the command's arguments (a token, unencrypted).
 */
import {
  type IoRedisClient,
  isIoRedis,
  isIoRedisCluster,
  isNodeRedis,
  isNodeRedisCluster,
  isNodeRedisSentinel,
  type NodeRedisClient,
  type NodeRedisCluster,
  type RedisClient,
} from './redis-client.js'
import { firstConnectionOf, ioRedisConnecting, settled } from './redis-first-connection.js'

/** Sends commands to one Redis node: a primary of a cluster, for SCAN. */
export interface NodeCommander {
  run(args: readonly [string, ...string[]]): Promise<unknown>
}

/** Sends one command, e.g. `['GET', key]`, and resolves to its reply. */
export interface RedisCommander {
  /**
   * Sends `args`; a cluster client sends it to the node that owns `key`'s slot (node-redis
   * routes raw commands by the key it is given; ioredis finds the keys itself).
   */
  run(args: readonly [string, ...string[]], key: string): Promise<unknown>
  /**
   * Resolves once the client's FIRST connection has settled — ready, or failed — and
   * at once otherwise (ready, reconnecting after an outage, closed). Never rejects.
   */
  firstConnection(): Promise<void>
  /** ioredis `keyPrefix`, which ioredis adds to the keys of our commands but not to SCAN patterns. */
  readonly keyPrefix: string
  /**
   * Whether this is a cluster client: keys of different slots cannot share a command
   * (CROSSSLOT, https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/),
   * so a multi-key DEL is one DEL per key.
   */
  readonly cluster: boolean
  /** Where SCAN must run to see every key: each primary of a cluster, else the one server. */
  primaries(): Promise<readonly NodeCommander[]>
}

/**
 * One way to send raw commands through either client.
 *
 * Both clients queue commands while disconnected unless told otherwise (node-redis's
 * offline queue, ioredis's `enableOfflineQueue`): during an outage every request
 * that misses would add a command that waits for the reconnect, and the queue grows
 * without bound. So a command is refused here at once when the client is not ready —
 * TokenCache counts the rejection as a miss and fetches locally — whatever options
 * the caller chose. The recommended options (docs/replicas.md) fail in-flight commands fast too.
 *
 * The one wait is for a client's first connection (`firstConnection()`): a replica
 * that gets requests while its client is still connecting — `new Redis()` connects in
 * the background — would otherwise fetch a token of its own, N fresh replicas N
 * tokens. That wait ends when the client is ready or its first attempt fails; it is
 * never a wait for a reconnect.
 */
export function commanderFor(client: RedisClient): RedisCommander {
  if (typeof client !== 'object' || client === null) {
    throw new TypeError('redisStore needs a node-redis or an ioredis client in `client`')
  }
  if (isIoRedis(client)) return ioRedisCommander(client)
  if (isNodeRedisSentinel(client)) {
    throw new TypeError(
      'redisStore does not support node-redis Sentinel clients (createSentinel()): use ioredis with `sentinels` and `name`',
    )
  }
  if (isNodeRedis(client)) {
    return isNodeRedisCluster(client)
      ? nodeRedisClusterCommander(client)
      : nodeRedisCommander(client)
  }
  throw new TypeError(
    'redisStore needs a node-redis client (createClient() or createCluster() from "redis") or an ioredis client (new Redis() or new Cluster() from "ioredis") in `client`',
  )
}

/**
 * ioredis, one server (with or without Sentinel) or a Cluster: both have `call()`, and a
 * Cluster routes it by the command's keys (EVAL's included) and follows MOVED and ASK.
 * With Sentinel, ioredis asks the sentinels for the primary on every (re)connect.
 */
function ioRedisCommander(client: IoRedisClient): RedisCommander {
  const first = firstConnectionOf(client)
  const run = (node: IoRedisClient, args: readonly [string, ...string[]]): Promise<unknown> => {
    // 'wait' is ioredis with lazyConnect before its first command, which connects it.
    if (node.status !== 'ready' && node.status !== 'wait') {
      return Promise.reject(notReady(node.status))
    }
    const [command, ...rest] = args
    return sanitised(command, rest, node.call(command, ...rest))
  }
  const cluster = isIoRedisCluster(client)
  return {
    keyPrefix: client.options?.keyPrefix ?? '',
    cluster,
    firstConnection() {
      if (!first.pending) return settled
      if (client.status === 'wait') {
        // lazyConnect: its first command would connect it; waiting for it is a first use.
        if (typeof client.connect !== 'function') return settled
        try {
          // A failure is the client's 'error' and 'close' events, which settle the wait.
          Promise.resolve(client.connect()).catch(() => {})
        } catch {
          return settled
        }
      }
      return ioRedisConnecting.has(client.status) ? first.settled : settled
    },
    run: (args) => run(client, args),
    async primaries() {
      if (!cluster) return [{ run: (args) => run(client, args) }]
      if (client.status !== 'ready') throw notReady(client.status)
      return client.nodes('master').map((node) => ({ run: (args) => run(node, args) }))
    },
  }
}

function nodeRedisCommander(client: NodeRedisClient): RedisCommander {
  const first = firstConnectionOf(client)
  const run = (args: readonly [string, ...string[]]): Promise<unknown> => {
    if (!client.isReady) return Promise.reject(notReady('not ready'))
    return sanitised(args[0], args.slice(1), client.sendCommand([...args]))
  }
  return {
    keyPrefix: '',
    cluster: false,
    firstConnection() {
      // Not open: connect() was not called (or it is closed); nothing is under way.
      return first.pending && client.isOpen === true && !client.isReady ? first.settled : settled
    },
    run,
    primaries: async () => [{ run }],
  }
}

/**
 * node-redis `createCluster()`: a raw command is routed by the key it is given
 * (`sendCommand(firstKey, isReadonly, args)`), MOVED and ASK followed by the client.
 * A primary that is down fails its commands at once when the nodes' clients have no
 * offline queue (`defaults: { disableOfflineQueue: true }`, docs/replicas.md).
 */
function nodeRedisClusterCommander(client: NodeRedisCluster): RedisCommander {
  const first = firstConnectionOf(client)
  return {
    keyPrefix: '',
    cluster: true,
    firstConnection() {
      return first.pending && client.isOpen && !client.isReady ? first.settled : settled
    },
    run(args, key) {
      if (!client.isReady) return Promise.reject(notReady('not ready'))
      return sanitised(args[0], args.slice(1), client.sendCommand(key, false, [...args]))
    },
    async primaries() {
      if (!client.isReady) throw notReady('not ready')
      const nodes = await Promise.all(client.masters.map((master) => client.nodeClient(master)))
      return nodes.map((node) => ({
        run: (args) => sanitised(args[0], args.slice(1), node.sendCommand([...args])),
      }))
    },
  }
}

function notReady(status: string): Error {
  return new Error(`Redis client is not connected (${status}): the command was not sent`)
}

/**
 * Client errors may carry the command's arguments — ioredis's ReplyError has
 * `command.args`, which for SET is the stored value, i.e. the token when it is not
 * encrypted. Rethrow a fresh error with the command name and the server's message
 * only, with any long argument blanked out of that message, and no `cause`.
 */
async function sanitised<T>(
  command: string,
  args: readonly string[],
  reply: Promise<T>,
): Promise<T> {
  try {
    return await reply
  } catch (error) {
    let message = error instanceof Error ? error.message : String(error)
    for (const arg of args) if (arg.length >= 16) message = message.split(arg).join('…')
    if (message.length > 300) message = `${message.slice(0, 300)}…`
    throw new Error(`Redis ${command} failed: ${message}`)
  }
}

/** A string reply as a string (a Buffer when the client is set to return buffers). */
export function asText(reply: unknown): string | undefined {
  if (typeof reply === 'string') return reply
  if (reply instanceof Uint8Array) return Buffer.from(reply).toString('utf8')
  return undefined
}

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

function isIoRedis(client: RedisClient): client is IoRedisClient {
  return (
    typeof (client as Partial<IoRedisClient>).call === 'function' &&
    typeof (client as Partial<IoRedisClient>).status === 'string'
  )
}

function isIoRedisCluster(client: IoRedisClient): client is IoRedisCluster {
  return typeof (client as Partial<IoRedisCluster>).nodes === 'function'
}

function isNodeRedis(client: RedisClient): client is NodeRedisClient | NodeRedisCluster {
  return (
    typeof (client as Partial<NodeRedisClient>).sendCommand === 'function' &&
    typeof (client as Partial<NodeRedisClient>).isReady === 'boolean'
  )
}

function isNodeRedisCluster(
  client: NodeRedisClient | NodeRedisCluster,
): client is NodeRedisCluster {
  return (
    typeof (client as Partial<NodeRedisCluster>).nodeClient === 'function' &&
    Array.isArray((client as Partial<NodeRedisCluster>).masters)
  )
}

/** node-redis `createSentinel()`: its `sendCommand(isReadonly, args)` is neither shape above. */
function isNodeRedisSentinel(client: RedisClient): boolean {
  const candidate = client as { acquire?: unknown; getMasterNode?: unknown }
  return typeof candidate.acquire === 'function' && typeof candidate.getMasterNode === 'function'
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

const settled: Promise<void> = Promise.resolve()

/** ioredis statuses of a connection under way (then 'ready', or 'close' and 'reconnecting'). */
const ioRedisConnecting = new Set(['wait', 'connecting', 'connect'])

/** Whether a client's first connection is still under way, and when it settles. */
interface FirstConnection {
  pending: boolean
  readonly settled: Promise<void>
}

/** One per client, however many stores share it: one set of listeners. */
const firstConnections = new WeakMap<object, FirstConnection>()

/**
 * Watches a client's first connection, from the status it has when the first store
 * is made for it. It settles on the first of:
 * - ioredis (a Cluster too): 'ready'; 'close' (an attempt failed, a reconnect comes next); 'end';
 * - node-redis: 'ready'; 'reconnecting' (an attempt failed); 'end';
 * - node-redis cluster: 'connect' (the slots are known); 'error'; 'disconnect'.
 * A client ready already, or one reconnecting after having been ready (ioredis counts
 * `retryAttempts` until it is ready again), has no first connection to wait for.
 */
function firstConnectionOf(client: RedisClient): FirstConnection {
  const known = firstConnections.get(client)
  if (known !== undefined) return known
  const { on, off } = client
  let pending: boolean
  let events: readonly string[]
  if (isIoRedis(client)) {
    const retries = (client as { readonly retryAttempts?: unknown }).retryAttempts
    pending = ioRedisConnecting.has(client.status) && !(typeof retries === 'number' && retries > 0)
    events = ['ready', 'close', 'end']
  } else if (isNodeRedisCluster(client)) {
    // A cluster client says 'connect' once it knows the slots; a failed discovery is
    // 'error' (each root node tried), and connect() rejecting closes it.
    pending = !client.isReady
    events = ['connect', 'error', 'disconnect']
  } else {
    pending = !client.isReady
    events = ['ready', 'reconnecting', 'end']
  }
  // A client that cannot be watched (not an EventEmitter) is never waited for.
  if (!pending || typeof on !== 'function' || typeof off !== 'function') {
    const none: FirstConnection = { pending: false, settled }
    firstConnections.set(client, none)
    return none
  }
  let settle: () => void = () => {}
  const first: FirstConnection = {
    pending: true,
    settled: new Promise<void>((resolve) => {
      settle = resolve
    }),
  }
  const done = (): void => {
    first.pending = false
    for (const event of events) off.call(client, event, done)
    settle()
  }
  for (const event of events) on.call(client, event, done)
  firstConnections.set(client, first)
  return first
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

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

/** The part of an ioredis client (`ioredis` 5–6, `new Redis()`) this store uses. */
export interface IoRedisClient extends ClientEvents {
  call(command: string, ...args: string[]): Promise<unknown>
  /** `'ready'` when usable; `'wait'` before a lazy connect; others while (re)connecting or closed. */
  readonly status: string
  readonly options?: { readonly keyPrefix?: string | undefined } | undefined
  /** Starts the connection of a `lazyConnect` client (`'wait'`). */
  connect?(): Promise<unknown>
}

/** A node-redis or an ioredis client, connected (or connecting) by the caller. */
export type RedisClient = NodeRedisClient | IoRedisClient

/** Sends one command, e.g. `['GET', key]`, and resolves to its reply. */
export interface RedisCommander {
  run(args: readonly [string, ...string[]]): Promise<unknown>
  /**
   * Resolves once the client's FIRST connection has settled — ready, or failed — and
   * at once otherwise (ready, reconnecting after an outage, closed). Never rejects.
   */
  firstConnection(): Promise<void>
  /** ioredis `keyPrefix`, which ioredis adds to the keys of our commands but not to SCAN patterns. */
  readonly keyPrefix: string
}

function isIoRedis(client: RedisClient): client is IoRedisClient {
  return (
    typeof (client as Partial<IoRedisClient>).call === 'function' &&
    typeof (client as Partial<IoRedisClient>).status === 'string'
  )
}

function isNodeRedis(client: RedisClient): client is NodeRedisClient {
  return (
    typeof (client as Partial<NodeRedisClient>).sendCommand === 'function' &&
    typeof (client as Partial<NodeRedisClient>).isReady === 'boolean'
  )
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
  if (isIoRedis(client)) {
    const first = firstConnectionOf(client)
    return {
      keyPrefix: client.options?.keyPrefix ?? '',
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
      run(args) {
        // 'wait' is ioredis with lazyConnect before its first command, which connects it.
        if (client.status !== 'ready' && client.status !== 'wait') {
          return Promise.reject(notReady(client.status))
        }
        const [command, ...rest] = args
        return sanitised(command, rest, client.call(command, ...rest))
      },
    }
  }
  if (isNodeRedis(client)) {
    const first = firstConnectionOf(client)
    return {
      keyPrefix: '',
      firstConnection() {
        // Not open: connect() was not called (or it is closed); nothing is under way.
        return first.pending && client.isOpen === true && !client.isReady ? first.settled : settled
      },
      run(args) {
        if (!client.isReady) return Promise.reject(notReady('not ready'))
        return sanitised(args[0], args.slice(1), client.sendCommand([...args]))
      },
    }
  }
  throw new TypeError(
    'redisStore needs a node-redis client (createClient() from "redis") or an ioredis client (new Redis() from "ioredis") in `client`',
  )
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
 * - ioredis: 'ready'; 'close' (an attempt failed, a reconnect comes next); 'end';
 * - node-redis: 'ready'; 'reconnecting' (an attempt failed); 'end'.
 * A client ready already, or one reconnecting after having been ready (ioredis counts
 * `retryAttempts` until it is ready again), has no first connection to wait for.
 */
function firstConnectionOf(client: IoRedisClient | NodeRedisClient): FirstConnection {
  const known = firstConnections.get(client)
  if (known !== undefined) return known
  const { on, off } = client
  let pending: boolean
  let failures: readonly string[]
  if (isIoRedis(client)) {
    const retries = (client as { readonly retryAttempts?: unknown }).retryAttempts
    pending = ioRedisConnecting.has(client.status) && !(typeof retries === 'number' && retries > 0)
    failures = ['close', 'end']
  } else {
    pending = !client.isReady
    failures = ['reconnecting', 'end']
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
  const events = ['ready', ...failures]
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

/**
 * The part of a node-redis client (`redis` 4–6, `createClient()`) this store uses.
 * Typed here, not imported: neither client is a dependency of the package.
 */
export interface NodeRedisClient {
  sendCommand(args: string[]): Promise<unknown>
  /** True while connected and past the handshake; false while (re)connecting or closed. */
  readonly isReady: boolean
}

/** The part of an ioredis client (`ioredis` 5–6, `new Redis()`) this store uses. */
export interface IoRedisClient {
  call(command: string, ...args: string[]): Promise<unknown>
  /** `'ready'` when usable; `'wait'` before a lazy connect; others while (re)connecting or closed. */
  readonly status: string
  readonly options?: { readonly keyPrefix?: string | undefined } | undefined
}

/** A node-redis or an ioredis client, connected (or connecting) by the caller. */
export type RedisClient = NodeRedisClient | IoRedisClient

/** Sends one command, e.g. `['GET', key]`, and resolves to its reply. */
export interface RedisCommander {
  run(args: readonly [string, ...string[]]): Promise<unknown>
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
 * the caller chose. The recommended options (README) fail in-flight commands fast too.
 */
export function commanderFor(client: RedisClient): RedisCommander {
  if (typeof client !== 'object' || client === null) {
    throw new TypeError('redisStore needs a node-redis or an ioredis client in `client`')
  }
  if (isIoRedis(client)) {
    return {
      keyPrefix: client.options?.keyPrefix ?? '',
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
    return {
      keyPrefix: '',
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

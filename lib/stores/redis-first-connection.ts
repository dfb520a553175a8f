/*
 * The one wait the store allows itself: for a client's first connection, so that a
 * replica whose client is still connecting shares the fleet's token instead of fetching
 * its own. Never a wait for a reconnect (see commanderFor in redis-commander.ts).
 */
import { isIoRedis, isNodeRedisCluster, type RedisClient } from './redis-client.js'

/** Nothing to wait for. */
export const settled: Promise<void> = Promise.resolve()

/** ioredis statuses of a connection under way (then 'ready', or 'close' and 'reconnecting'). */
export const ioRedisConnecting: ReadonlySet<string> = new Set(['wait', 'connecting', 'connect'])

/** Whether a client's first connection is still under way, and when it settles. */
export interface FirstConnection {
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
export function firstConnectionOf(client: RedisClient): FirstConnection {
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

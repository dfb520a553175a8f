// @ts-check
// Memory and allocations, in a child process started with --expose-gc (bench/run.js forks it;
// argv[2] is the fast responder's origin, argv[3] "quick" for short runs). Prints one JSON line.
//
// 1. Real HTTP on loopback: bytes allocated per request through undici.request for a raw Agent,
//    a pass-through interceptor and accessToken() on that Agent (and pass-through again once
//    accessToken() has fetched its token), and the heap after a further run through accessToken().
// 2. The interceptor alone, 1 000 000 times: the composed dispatch function is called with a
//    minimal downstream dispatch that answers 200 synchronously (no sockets), for no interceptor,
//    a pass-through interceptor and accessToken() with a cached token. ns and bytes allocated per
//    request, and the heap (after a full GC) before and after.
// 3. Distinct keys: 100 000 requests, each for its own key (`key: ({ path }) => path`), through
//    accessToken() with the default store and with memoryStore({ maxEntries: 1000 }); the heap
//    after, and how many of the most recent keys are still cached.
import { GCProfiler } from 'node:v8'
import { Agent, request } from 'undici'
import { accessToken, memoryStore } from 'undici-access-token'
import { instantDownstream } from '../tests/support/handlers.js'
import { passThrough } from './clients.js'

const origin = process.argv[2] ?? 'http://127.0.0.1:9'
const quick = process.argv[3] === 'quick'
const gc = /** @type {() => void} */ (globalThis.gc)
if (typeof gc !== 'function') throw new Error('bench/memory.js needs --expose-gc')

/** Heap used after full collections. */
function settledHeap() {
  for (let i = 0; i < 3; i++) gc()
  return process.memoryUsage().heapUsed
}

/**
 * Bytes allocated while `fn` runs: the growth of the used heap plus what every GC in between
 * freed (V8's GC profiler reports the used heap before and after each collection).
 * @param {() => Promise<void> | void} fn
 */
async function measure(fn) {
  gc()
  const profiler = new GCProfiler()
  const before = process.memoryUsage().heapUsed
  profiler.start()
  const start = process.hrtime.bigint()
  await fn()
  const ns = Number(process.hrtime.bigint() - start)
  const after = process.memoryUsage().heapUsed
  const profile = profiler.stop()
  let freed = 0
  for (const { beforeGC, afterGC } of profile?.statistics ?? []) {
    freed += beforeGC.heapStatistics.usedHeapSize - afterGC.heapStatistics.usedHeapSize
  }
  return { ns, allocated: after - before + freed }
}

/** Downstream dispatch that answers 200 at once, with no socket. */
const downstream = instantDownstream

let completed = 0
/** The caller's handler, new API, as undici's request() makes one per request. */
class CallerHandler {
  /** @param {(() => void) | undefined} [done] */
  constructor(done) {
    this.done = done
  }
  onRequestStart() {}
  onResponseStart() {}
  onResponseData() {}
  onResponseEnd() {
    completed++
    this.done?.()
  }
  /** @param {unknown} _controller @param {Error} error */
  onResponseError(_controller, error) {
    throw error
  }
}

const apiOrigin = 'https://api.example.com'
/** @param {string} path */
const optionsFor = (path) => ({
  origin: apiOrigin,
  path,
  method: 'GET',
  headers: { accept: 'application/json' },
})

/** @param {(opts: any, handler: any) => boolean} dispatch @param {number} count */
function drive(dispatch, count) {
  for (let i = 0; i < count; i++) dispatch(optionsFor('/readers'), new CallerHandler())
}

const results = {}

// 1. Real HTTP, first: raw and pass-through are measured before accessToken() has fetched a
//    token in this process (which enables its AsyncLocalStorage, and with it Node 20's promise
//    hooks, for the rest of the process), then accessToken(), then pass-through again.
{
  const count = quick ? 5_000 : 20_000
  const longCount = quick ? 20_000 : 100_000
  const concurrency = 50
  const agent = new Agent({ connections: concurrency })
  /** @param {import('undici').Dispatcher} dispatcher @param {number} n */
  const run = async (dispatcher, n) => {
    let next = 0
    const worker = async () => {
      while (next < n) {
        next++
        const { body } = await request(`${origin}/`, { dispatcher })
        await body.dump()
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
  }
  /** @param {import('undici').Dispatcher} dispatcher */
  const bytesPerRequest = async (dispatcher) => {
    await run(dispatcher, 2_000)
    const { allocated } = await measure(() => run(dispatcher, count))
    return allocated / count
  }
  const passThroughDispatcher = agent.compose(passThrough)
  const raw = await bytesPerRequest(agent)
  const pass = await bytesPerRequest(passThroughDispatcher)
  const tokenDispatcher = agent.compose(
    accessToken({
      origins: origin,
      fetchToken: async () => ({ accessToken: 'bench-token', expiresIn: 3600 }),
    }),
  )
  const token = await bytesPerRequest(tokenDispatcher)
  const passAfter = await bytesPerRequest(passThroughDispatcher)
  const heapBefore = settledHeap()
  await run(tokenDispatcher, longCount)
  const heapAfter = settledHeap()
  await agent.close()
  Object.assign(results, {
    http: {
      count,
      bytesPerRequest: { raw, passThrough: pass, accessToken: token, passThroughAfter: passAfter },
      longCount,
      heapBefore,
      heapAfter,
    },
  })
}

// 2. The interceptor alone.
{
  const count = quick ? 200_000 : 1_000_000
  const tokenDispatch = /** @type {any} */ (accessToken)({
    origins: apiOrigin,
    fetchToken: async () => ({ accessToken: 'bench-token', expiresIn: 3600 }),
  })(downstream)
  // Fill the cache, then warm up every variant.
  await new Promise((resolve) =>
    tokenDispatch(optionsFor('/'), new CallerHandler(() => resolve(undefined))),
  )
  const variants = {
    none: downstream,
    passThrough: /** @type {any} */ (passThrough)(downstream),
    accessToken: tokenDispatch,
  }
  for (const dispatch of Object.values(variants)) drive(dispatch, 200_000)
  /** @type {Record<string, { nsPerRequest: number, bytesPerRequest: number, heapBefore: number, heapAfter: number }>} */
  const dispatchOnly = {}
  // Twice in turn; the second pass is reported (the first settles JIT and GC for all three).
  for (let pass = 0; pass < 2; pass++) {
    for (const [name, dispatch] of Object.entries(variants)) {
      const heapBefore = settledHeap()
      completed = 0
      const { ns, allocated } = await measure(() => drive(dispatch, count))
      if (completed !== count) throw new Error(`${name}: ${completed} of ${count} completed`)
      dispatchOnly[name] = {
        nsPerRequest: ns / count,
        bytesPerRequest: allocated / count,
        heapBefore,
        heapAfter: settledHeap(),
      }
    }
  }
  Object.assign(results, { dispatchOnly: { count, variants: dispatchOnly } })
}

// 3. Distinct keys.
{
  const keys = quick ? 20_000 : 100_000
  const recent = 10_000
  const batch = 1_000
  /** @type {Record<string, { heapBefore: number, heapAfter: number, heapAfterDrop: number, fetches: number, recent: number, recentRefetched: number }>} */
  const byStore = {}
  // The most recent keys a store can hold are asked again: min(10 000, its maxEntries).
  /** @type {Record<string, { options: () => object, capacity: number }>} */
  const stores = {
    'default (memoryStore(), maxEntries 10 000)': { options: () => ({}), capacity: 10_000 },
    'memoryStore({ maxEntries: 1000 })': {
      options: () => ({ store: memoryStore({ maxEntries: 1000 }) }),
      capacity: 1_000,
    },
  }
  for (const [name, { options: storeOptions, capacity }] of Object.entries(stores)) {
    const heapBefore = settledHeap()
    let fetches = 0
    let dispatch = /** @type {any} */ (accessToken)({
      origins: apiOrigin,
      key: (/** @type {{ path: string }} */ { path }) => path,
      fetchToken: async (/** @type {{ key: string }} */ { key }) => {
        fetches++
        return { accessToken: `token-for-${key}`, expiresIn: 3600 }
      },
      ...storeOptions(),
    })(downstream)
    /** @param {number} from @param {number} to */
    const requestKeys = async (from, to) => {
      for (let start = from; start < to; start += batch) {
        const end = Math.min(to, start + batch)
        await Promise.all(
          Array.from(
            { length: end - start },
            (_, i) =>
              new Promise((resolve) =>
                dispatch(
                  optionsFor(`/tenant-${start + i}`),
                  new CallerHandler(() => resolve(undefined)),
                ),
              ),
          ),
        )
      }
    }
    await requestKeys(0, keys)
    const fetchesFirst = fetches
    const heapAfter = settledHeap()
    const asked = Math.min(recent, capacity)
    await requestKeys(keys - asked, keys)
    dispatch = undefined
    byStore[name] = {
      heapBefore,
      heapAfter,
      heapAfterDrop: settledHeap(),
      fetches: fetchesFirst,
      recent: asked,
      recentRefetched: fetches - fetchesFirst,
    }
  }
  Object.assign(results, { keys: { keys, recent, byStore } })
}

process.stdout.write(`${JSON.stringify(results)}\n`)

// @ts-check
// A client process of the benchmark, forked by the sections: every client runs in a process of
// its own, so that nothing one client leaves behind — sockets, timers, and above all an enabled
// AsyncLocalStorage, whose promise hooks tax every promise in the process on Node 20 — touches
// another client's figures. Commands (over IPC, see util.js `serve`):
//   hot:run   one hot-path sample: `count` requests through `variant` with `api`
//   stampede  `concurrency` requests at once on a cold client of kind `name`
//   rollover  open-loop load on a warmed client of kind `name`
import { Agent, request, setGlobalDispatcher, fetch as undiciFetch } from 'undici'
import { accessToken } from 'undici-access-token'
import { sleep } from '../tests/support/async.js'
import { connections, kind, passThrough } from './clients.js'
import { serve } from './util.js'

// Built-in fetch (the naive, hand-written and @badgateway clients, and this package's token
// requests) gets 64 connections per origin, like every other client.
setGlobalDispatcher(new Agent({ connections }))

const hotConcurrency = 50

/** @type {{ agent: Agent, origin: string, dispatchers: Record<string, import('undici').Dispatcher> } | undefined} */
let hot

/** The hot path's dispatchers on one Agent; accessToken() only when first asked for. */
function hotDispatcher(/** @type {string} */ origin, /** @type {string} */ variant) {
  if (hot === undefined) {
    const agent = new Agent({ connections: hotConcurrency })
    hot = { agent, origin, dispatchers: { raw: agent, passThrough: agent.compose(passThrough) } }
  }
  if (variant === 'accessToken' && hot.dispatchers.accessToken === undefined) {
    hot.dispatchers.accessToken = hot.agent.compose(
      accessToken({
        origins: origin,
        fetchToken: async () => ({ accessToken: 'bench-token', expiresIn: 3600 }),
      }),
    )
  }
  const dispatcher = hot.dispatchers[variant]
  if (dispatcher === undefined) throw new Error(`no hot-path variant ${variant}`)
  return dispatcher
}

/** @type {Record<string, (url: string, dispatcher: import('undici').Dispatcher) => Promise<void>>} */
const apis = {
  'undici.request': async (url, dispatcher) => {
    const { body } = await request(url, { dispatcher })
    await body.dump()
  },
  'undici fetch': async (url, dispatcher) => {
    const response = await undiciFetch(url, { dispatcher })
    await response.arrayBuffer()
  },
  'built-in fetch': async (url, dispatcher) => {
    // Node's own fetch (its bundled undici) sending through our undici 7 dispatchers.
    const response = await fetch(
      url,
      /** @type {RequestInit} */ (/** @type {unknown} */ ({ dispatcher })),
    )
    await response.arrayBuffer()
  },
}

serve({
  async 'hot:run'(
    /** @type {{ origin: string, api: string, variant: string, count: number }} */ {
      origin,
      api,
      variant,
      count,
    },
  ) {
    const dispatcher = hotDispatcher(origin, variant)
    const send = apis[api]
    if (send === undefined) throw new Error(`no API ${api}`)
    const url = `${origin}/`
    let next = 0
    const worker = async () => {
      while (next < count) {
        next++
        await send(url, dispatcher)
      }
    }
    const cpu = process.cpuUsage()
    const start = process.hrtime.bigint()
    await Promise.all(Array.from({ length: hotConcurrency }, worker))
    const ns = Number(process.hrtime.bigint() - start)
    const used = process.cpuUsage(cpu)
    return { rps: (count / ns) * 1e9, cpuMicros: (used.user + used.system) / count }
  },

  async stampede(
    /** @type {{ name: string, origins: { idp: string, api: string }, concurrency: number }} */ {
      name,
      origins,
      concurrency,
    },
  ) {
    const client = kind(name).create(origins, 3_600_000)
    const started = performance.now()
    const statuses = await Promise.all(
      Array.from({ length: concurrency }, (_, i) => client.get(`/stampede/${i}`)),
    )
    const ms = performance.now() - started
    await client.close()
    return { succeeded: statuses.filter((status) => status === 200).length, ms }
  },

  async rollover(
    /** @type {{ name: string, origins: { idp: string, api: string }, lifetimeMs: number, rate: number, seconds: number }} */ {
      name,
      origins,
      lifetimeMs,
      rate,
      seconds,
    },
  ) {
    const client = kind(name).create(origins, lifetimeMs)
    await client.get('/warm-up') // the cold fetch is the stampede section's business
    const total = Math.round(rate * seconds)
    const at = new Array(total).fill(0)
    const latency = new Array(total).fill(0)
    const status = new Array(total).fill(0)
    const startEpoch = Date.now()
    const start = performance.now()
    /** @type {Promise<void>[]} */
    const inFlight = []
    for (let launched = 0; launched < total; ) {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1)
      for (; launched < due; launched++) {
        const i = launched
        // Latency counts from the scheduled start: a stall is charged to every request it holds up.
        const scheduled = start + (i * 1000) / rate
        at[i] = scheduled - start
        inFlight.push(
          client.get(`/rollover/${i}`).then((code) => {
            latency[i] = performance.now() - scheduled
            status[i] = code
          }),
        )
      }
      if (launched < total) await sleep(2)
    }
    await Promise.all(inFlight)
    await client.close()
    return { startEpoch, at, latency, status }
  },
})

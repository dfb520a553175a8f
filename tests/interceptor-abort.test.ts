import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Agent, request, upgrade } from 'undici'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { accessToken, type FetchToken } from '../lib/index.js'
import { startServer, type TestServer } from './helpers/servers.js'

/** A promise with its resolve function, to hold a server's answer until the test says so. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {}
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}

/** Records every callback a raw dispatch handler receives. */
function recordingHandler() {
  const calls: string[] = []
  let resolveEnd: (value: string) => void = () => {}
  const ended = new Promise<string>((resolve) => {
    resolveEnd = resolve
  })
  let controller: { abort(reason: Error): void } | undefined
  const handler = {
    onRequestStart(c: { abort(reason: Error): void }) {
      controller = c
      calls.push('start')
    },
    onResponseStart(_c: unknown, status: number) {
      calls.push(`status ${status}`)
    },
    onResponseData() {
      if (calls.at(-1) !== 'data') calls.push('data')
    },
    onResponseEnd() {
      calls.push('end')
      resolveEnd('end')
    },
    onResponseError(_c: unknown, error: Error) {
      calls.push(`error ${error.name}`)
      resolveEnd('error')
    },
  }
  return {
    calls,
    ended,
    handler,
    abort(
      reason = new DOMException('The operation was aborted', 'AbortError') as unknown as Error,
    ) {
      controller?.abort(reason)
    },
  }
}

const terminal = (calls: string[]) => calls.filter((c) => c === 'end' || c.startsWith('error'))

let servers: TestServer[] = []
let agents: Agent[] = []
afterEach(async () => {
  await Promise.all(agents.map((agent) => agent.destroy()))
  await Promise.all(servers.map((server) => server.close()))
  servers = []
  agents = []
})

async function serve(handle: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>) {
  const server = await startServer(handle)
  servers.push(server)
  return server
}

function agentFor(origin: string, fetchToken: FetchToken, connections?: number) {
  const agent = new Agent(connections === undefined ? {} : { connections })
  agents.push(agent)
  return agent.compose(accessToken({ origins: origin, fetchToken, minRenewalInterval: 0 }))
}

describe('an abort at any moment ends the caller’s request at once, with one terminal callback', () => {
  let apiHits: string[]
  beforeEach(() => {
    apiHits = []
  })

  test('while the token is being fetched: rejects now; the API sees nothing; other waiters still succeed', async () => {
    const tokenGate = gate()
    let tokenRequests = 0
    const fetchToken: FetchToken = async () => {
      tokenRequests++
      await tokenGate.promise
      return { accessToken: 'token-1', expiresIn: 60 }
    }
    const api = await serve((req, res) => {
      apiHits.push(req.headers.authorization ?? 'none')
      res.end('ok')
    })
    const dispatcher = agentFor(api.origin, fetchToken)
    const controller = new AbortController()
    const aborted = request(`${api.origin}/a`, { dispatcher, signal: controller.signal })
    const other = request(`${api.origin}/b`, { dispatcher })
    controller.abort()
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' })
    // rejected while the token endpoint still holds its answer
    expect(apiHits).toEqual([])
    tokenGate.open()
    const response = await other
    expect(await response.body.text()).toBe('ok')
    expect(apiHits).toEqual(['Bearer token-1'])
    expect(tokenRequests).toBe(1)

    // raw handler: exactly one terminal callback
    const tokenGate2 = gate()
    const slow = agentFor(api.origin, async () => {
      await tokenGate2.promise
      return { accessToken: 'token-2', expiresIn: 60 }
    })
    const recorder = recordingHandler()
    slow.dispatch({ origin: api.origin, path: '/raw', method: 'GET' }, recorder.handler)
    recorder.abort()
    expect(await recorder.ended).toBe('error')
    tokenGate2.open()
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(terminal(recorder.calls)).toHaveLength(1)
    expect(apiHits).toEqual(['Bearer token-1']) // the late token did not send it
  })

  test('during the first attempt (API slow to answer)', async () => {
    const apiGate = gate()
    const api = await serve(async (req, res) => {
      apiHits.push(req.headers.authorization ?? 'none')
      await apiGate.promise
      res.end('late')
    })
    const dispatcher = agentFor(api.origin, async () => ({ accessToken: 'token-1', expiresIn: 60 }))
    const recorder = recordingHandler()
    dispatcher.dispatch({ origin: api.origin, path: '/slow', method: 'GET' }, recorder.handler)
    while (apiHits.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    recorder.abort()
    expect(await recorder.ended).toBe('error')
    apiGate.open()
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(recorder.calls).toEqual(['start', 'error AbortError'])
  })

  test('while the 401 is being swallowed: no retry is sent', async () => {
    const api = await serve((req, res) => {
      apiHits.push(req.headers.authorization ?? 'none')
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' })
      res.write('a 401 body that never ends…') // held open
    })
    let n = 0
    const dispatcher = agentFor(api.origin, async () => ({
      accessToken: `token-${++n}`,
      expiresIn: 60,
    }))
    const recorder = recordingHandler()
    dispatcher.dispatch({ origin: api.origin, path: '/swallow', method: 'GET' }, recorder.handler)
    while (apiHits.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    await new Promise((resolve) => setTimeout(resolve, 30)) // the 401's head and first bytes arrive
    recorder.abort()
    expect(await recorder.ended).toBe('error')
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(recorder.calls).toEqual(['start', 'error AbortError']) // the 401 was never shown
    expect(apiHits).toEqual(['Bearer token-1'])
    expect(n).toBe(1)
  })

  test('while the renewed token is being fetched after a 401', async () => {
    const renewalGate = gate()
    let n = 0
    const fetchToken: FetchToken = async () => {
      n++
      if (n === 2) await renewalGate.promise
      return { accessToken: `token-${n}`, expiresIn: 60 }
    }
    const api = await serve((req, res) => {
      apiHits.push(req.headers.authorization ?? 'none')
      res.writeHead(req.headers.authorization === 'Bearer token-2' ? 200 : 401)
      res.end()
    })
    const dispatcher = agentFor(api.origin, fetchToken)
    const recorder = recordingHandler()
    dispatcher.dispatch({ origin: api.origin, path: '/renew', method: 'GET' }, recorder.handler)
    while (n < 2) await new Promise((resolve) => setTimeout(resolve, 5))
    recorder.abort()
    expect(await recorder.ended).toBe('error')
    renewalGate.open()
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(recorder.calls).toEqual(['start', 'error AbortError'])
    expect(apiHits).toEqual(['Bearer token-1']) // the retry was never sent
  })

  test('while the retry waits for a connection: rejects now, and the queued retry is aborted when it starts', async () => {
    const blockerGate = gate()
    const api = await serve(async (req, res) => {
      apiHits.push(`${req.url} ${req.headers.authorization}`)
      if (req.url === '/blocker') {
        await blockerGate.promise
        res.end('blocker done')
        return
      }
      res.writeHead(req.headers.authorization === 'Bearer token-2' ? 200 : 401)
      res.end()
    })
    let n = 0
    const dispatcher = agentFor(
      api.origin,
      async () => ({ accessToken: `token-${++n}`, expiresIn: 60 }),
      1,
    )
    const recorder = recordingHandler()
    // The 401 arrives on the only connection; then the blocker takes it.
    dispatcher.dispatch({ origin: api.origin, path: '/queued', method: 'GET' }, recorder.handler)
    const blocker = request(`${api.origin}/blocker`, { dispatcher })
    while (n < 2) await new Promise((resolve) => setTimeout(resolve, 5))
    await new Promise((resolve) => setTimeout(resolve, 20)) // the retry is now queued behind the blocker
    recorder.abort()
    expect(await recorder.ended).toBe('error')
    blockerGate.open()
    await (await blocker).body.text()
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(recorder.calls).toEqual(['start', 'error AbortError'])
    expect(apiHits.filter((hit) => hit.startsWith('/queued'))).toEqual(['/queued Bearer token-1'])
  })

  test('during the second response: the body errors, one terminal callback', async () => {
    const api = await serve((req, res) => {
      apiHits.push(req.headers.authorization ?? 'none')
      if (req.headers.authorization !== 'Bearer token-2') {
        res.writeHead(401)
        res.end()
        return
      }
      res.writeHead(200)
      res.write('first part…') // and never the rest
    })
    let n = 0
    const dispatcher = agentFor(api.origin, async () => ({
      accessToken: `token-${++n}`,
      expiresIn: 60,
    }))
    const recorder = recordingHandler()
    dispatcher.dispatch({ origin: api.origin, path: '/second', method: 'GET' }, recorder.handler)
    while (!recorder.calls.includes('data')) await new Promise((resolve) => setTimeout(resolve, 5))
    recorder.abort()
    expect(await recorder.ended).toBe('error')
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(recorder.calls).toEqual(['start', 'status 200', 'data', 'error AbortError'])
    expect(apiHits).toEqual(['Bearer token-1', 'Bearer token-2'])
  })

  test('undici.request body stream aborted during the second response rejects the body read', async () => {
    const api = await serve((req, res) => {
      if (req.headers.authorization !== 'Bearer token-2') {
        res.writeHead(401)
        res.end()
        return
      }
      res.writeHead(200)
      res.write('partial')
    })
    let n = 0
    const dispatcher = agentFor(api.origin, async () => ({
      accessToken: `token-${++n}`,
      expiresIn: 60,
    }))
    const controller = new AbortController()
    const response = await request(`${api.origin}/x`, { dispatcher, signal: controller.signal })
    expect(response.statusCode).toBe(200)
    const text = response.body.text()
    controller.abort()
    await expect(text).rejects.toMatchObject({ name: 'AbortError' })
  })
})

describe('1xx and upgrades pass through', () => {
  test('a 103 Early Hints before the 200 does not disturb the request', async () => {
    const api = await serve((req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
      res.writeHead(200)
      res.end(req.headers.authorization)
    })
    const dispatcher = agentFor(api.origin, async () => ({ accessToken: 'token-1', expiresIn: 60 }))
    const response = await request(`${api.origin}/hints`, { dispatcher })
    expect(response.statusCode).toBe(200)
    expect(await response.body.text()).toBe('Bearer token-1')
  })

  test('an upgrade request carries the token and gets its socket', async () => {
    const api = await serve(() => {})
    const seen: (string | undefined)[] = []
    api.server.on('upgrade', (req: IncomingMessage, socket) => {
      seen.push(req.headers.authorization)
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n',
      )
      socket.on('data', (chunk: Buffer) => socket.end(chunk))
    })
    const dispatcher = agentFor(api.origin, async () => ({ accessToken: 'token-1', expiresIn: 60 }))
    const { socket } = await upgrade(`${api.origin}/ws`, { dispatcher, protocol: 'echo' })
    socket.write('ping')
    const [echo] = (await once(socket, 'data')) as [Buffer]
    expect(echo.toString()).toBe('ping')
    expect(seen).toEqual(['Bearer token-1'])
    socket.destroy()
  })
})

import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { Agent, request, upgrade } from 'undici'
import { afterEach, describe, expect, test } from 'vitest'
import { accessToken, type FetchToken } from '../lib/index.js'
import { gate, sleep, until } from './support/async.js'
import { recordingHandler } from './support/handlers.js'
import {
  type ApiOptions,
  type ApiServer,
  type Handle,
  startApi,
  startServer,
  type TestServer,
} from './support/servers.js'
import { tokenSource } from './support/token-sources.js'

const terminal = (calls: string[]) => calls.filter((c) => c === 'end' || c.startsWith('error'))

let servers: TestServer[] = []
let agents: Agent[] = []
afterEach(async () => {
  await Promise.all(agents.map((agent) => agent.destroy()))
  await Promise.all(servers.map((server) => server.close()))
  servers = []
  agents = []
})

/** An API closed after the test; `hits` records what it was sent. */
async function serveApi(options: ApiOptions): Promise<ApiServer> {
  const server = await startApi(options)
  servers.push(server)
  return server
}

async function serve(handle: Handle) {
  const server = await startServer(handle)
  servers.push(server)
  return server
}

/** The Authorization of every request the API received ('none' for none). */
const authorizations = (api: ApiServer) => api.hits.map((hit) => hit.authorization ?? 'none')

/** A source answering token-1, token-2, … valid for a minute. */
const numbered = () => tokenSource((n) => ({ accessToken: `token-${n}`, expiresIn: 60 }))

/** Waits for `condition`, at most 5 s. */
const waitFor = (condition: () => boolean, what: string) => until(condition, 5_000, what)

function agentFor(origin: string, fetchToken: FetchToken, connections?: number) {
  const agent = new Agent(connections === undefined ? {} : { connections })
  agents.push(agent)
  return agent.compose(accessToken({ origins: origin, fetchToken, minRenewalInterval: 0 }))
}

describe('an abort at any moment ends the caller’s request at once, with one terminal callback', () => {
  test('while the token is being fetched: rejects now; the API sees nothing; other waiters still succeed', async () => {
    const tokenGate = gate()
    const source = tokenSource(async () => {
      await tokenGate.promise
      return { accessToken: 'token-1', expiresIn: 60 }
    })
    const api = await serveApi({ respond: () => ({ body: 'ok' }) })
    const dispatcher = agentFor(api.origin, source.fetchToken)
    const controller = new AbortController()
    const aborted = request(`${api.origin}/a`, { dispatcher, signal: controller.signal })
    const other = request(`${api.origin}/b`, { dispatcher })
    controller.abort()
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' })
    // rejected while the token endpoint still holds its answer
    expect(authorizations(api)).toEqual([])
    tokenGate.open()
    const response = await other
    expect(await response.body.text()).toBe('ok')
    expect(authorizations(api)).toEqual(['Bearer token-1'])
    expect(source.calls).toHaveLength(1)

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
    await sleep(50)
    expect(terminal(recorder.calls)).toHaveLength(1)
    expect(authorizations(api)).toEqual(['Bearer token-1']) // the late token did not send it
  })

  test('during the first attempt (API slow to answer)', async () => {
    const apiGate = gate()
    const api = await serveApi({
      respond: async () => {
        await apiGate.promise
        return { body: 'late' }
      },
    })
    const dispatcher = agentFor(api.origin, async () => ({ accessToken: 'token-1', expiresIn: 60 }))
    const recorder = recordingHandler()
    dispatcher.dispatch({ origin: api.origin, path: '/slow', method: 'GET' }, recorder.handler)
    await waitFor(() => api.hits.length > 0, 'the request at the API')
    recorder.abort()
    expect(await recorder.ended).toBe('error')
    apiGate.open()
    await sleep(50)
    expect(recorder.calls).toEqual(['start', 'error AbortError'])
  })

  test('while the 401 is being swallowed: no retry is sent', async () => {
    const api = await serveApi({
      respond: () => ({
        status: 401,
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
        body: 'a 401 body that never ends…',
        stall: true, // held open
      }),
    })
    const source = numbered()
    const dispatcher = agentFor(api.origin, source.fetchToken)
    const recorder = recordingHandler()
    dispatcher.dispatch({ origin: api.origin, path: '/swallow', method: 'GET' }, recorder.handler)
    await waitFor(() => api.hits.length > 0, 'the request at the API')
    await sleep(30) // the 401's head and first bytes arrive
    recorder.abort()
    expect(await recorder.ended).toBe('error')
    await sleep(50)
    expect(recorder.calls).toEqual(['start', 'error AbortError']) // the 401 was never shown
    expect(authorizations(api)).toEqual(['Bearer token-1'])
    expect(source.calls).toHaveLength(1)
  })

  test('while the renewed token is being fetched after a 401', async () => {
    const renewalGate = gate()
    const source = tokenSource(async (n) => {
      if (n === 2) await renewalGate.promise
      return { accessToken: `token-${n}`, expiresIn: 60 }
    })
    const api = await serveApi({
      accept: (authorization) => authorization === 'Bearer token-2',
      respond: (_, accepted) => ({ status: accepted ? 200 : 401 }),
    })
    const dispatcher = agentFor(api.origin, source.fetchToken)
    const recorder = recordingHandler()
    dispatcher.dispatch({ origin: api.origin, path: '/renew', method: 'GET' }, recorder.handler)
    await waitFor(() => source.calls.length >= 2, 'the renewal')
    recorder.abort()
    expect(await recorder.ended).toBe('error')
    renewalGate.open()
    await sleep(50)
    expect(recorder.calls).toEqual(['start', 'error AbortError'])
    expect(authorizations(api)).toEqual(['Bearer token-1']) // the retry was never sent
  })

  test('while the retry waits for a connection: rejects now, and the queued retry is aborted when it starts', async () => {
    const blockerGate = gate()
    const api = await serveApi({
      accept: (authorization) => authorization === 'Bearer token-2',
      respond: async (hit, accepted) => {
        if (hit.url === '/blocker') {
          await blockerGate.promise
          return { body: 'blocker done' }
        }
        return { status: accepted ? 200 : 401 }
      },
    })
    const source = numbered()
    const dispatcher = agentFor(api.origin, source.fetchToken, 1)
    const recorder = recordingHandler()
    // The 401 arrives on the only connection; then the blocker takes it.
    dispatcher.dispatch({ origin: api.origin, path: '/queued', method: 'GET' }, recorder.handler)
    const blocker = request(`${api.origin}/blocker`, { dispatcher })
    await waitFor(() => source.calls.length >= 2, 'the renewal')
    await sleep(20) // the retry is now queued behind the blocker
    recorder.abort()
    expect(await recorder.ended).toBe('error')
    blockerGate.open()
    await (await blocker).body.text()
    await sleep(50)
    expect(recorder.calls).toEqual(['start', 'error AbortError'])
    expect(
      api.hits
        .filter((hit) => hit.url.startsWith('/queued'))
        .map((hit) => `${hit.url} ${hit.authorization}`),
    ).toEqual(['/queued Bearer token-1'])
  })

  test('during the second response: the body errors, one terminal callback', async () => {
    const api = await serveApi({
      accept: (authorization) => authorization === 'Bearer token-2',
      // and never the rest
      respond: (_, accepted) => (accepted ? { body: 'first part…', stall: true } : { status: 401 }),
    })
    const dispatcher = agentFor(api.origin, numbered().fetchToken)
    const recorder = recordingHandler()
    dispatcher.dispatch({ origin: api.origin, path: '/second', method: 'GET' }, recorder.handler)
    await waitFor(() => recorder.calls.includes('data'), 'the first bytes of the second response')
    recorder.abort()
    expect(await recorder.ended).toBe('error')
    await sleep(50)
    expect(recorder.calls).toEqual(['start', 'status 200', 'data', 'error AbortError'])
    expect(authorizations(api)).toEqual(['Bearer token-1', 'Bearer token-2'])
  })

  test('undici.request body stream aborted during the second response rejects the body read', async () => {
    const api = await serveApi({
      accept: (authorization) => authorization === 'Bearer token-2',
      respond: (_, accepted) => (accepted ? { body: 'partial', stall: true } : { status: 401 }),
    })
    const dispatcher = agentFor(api.origin, numbered().fetchToken)
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

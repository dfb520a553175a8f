import type { IncomingHttpHeaders } from 'node:http'
import { HttpResponse, http } from 'msw'
import { setupServer } from 'msw/node'
import { Agent, type Dispatcher } from 'undici'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  type ClientCredentialsOptions,
  clientCredentials,
  type FetchToken,
  TokenCache,
  TokenRequestError,
  type TokenResponse,
} from '../lib/index.js'
import { rejectionOf, sleep } from './support/async.js'
import { manualClock } from './support/clock.js'
import { expectNoSecrets } from './support/secrets.js'
import { startServer } from './support/servers.js'

/** application/x-www-form-urlencoded, as RFC 6749 §2.3.1 asks for id and secret in Basic. */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2)
}

// Spaces, ':' (the Basic separator), '+', '/', '=', '&', '%' and non-ASCII: every
// character that form encoding changes, so a missing encoding step shows.
const clientId = 'reader app: ü/+&=%'
const clientSecret = 'p4ss wörd:ü+/=&%-9f8e7d6c'
const basicCredential = Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString(
  'base64',
)
/** The client secret in every form it may travel in. */
const clientSecrets = [
  clientSecret,
  formEncode(clientSecret),
  encodeURIComponent(clientSecret),
  basicCredential,
]

/** What the token endpoint answers. `body` objects are sent as JSON. */
interface Answer {
  status?: number
  headers?: Record<string, string>
  body?: string | Uint8Array | object | null
  /** Ms to wait before answering. */
  delay?: number
  /** Send 64 KiB chunks for as long as the client reads (a body that never ends). */
  endless?: boolean
  /** Send the start of `body`, then nothing more and never end it. */
  stall?: boolean
}

interface Captured {
  method: string
  /** Path and query. */
  url: string
  headers: Record<string, string>
  body: string
}

/** A token endpoint reached over one transport. */
interface Harness {
  readonly origin: string
  readonly tokenUrl: string
  readonly dispatcher: Dispatcher | undefined
  readonly requests: Captured[]
  /** Bytes of an `endless` body handed to the transport so far. */
  readonly streamed: number
  /** Whether the reader let go of an `endless` body (cancelled it, or the connection closed). */
  readonly released: boolean
  /** False for msw, whose patched fetch never passes a body's cancellation on to the handler's stream. */
  readonly reportsRelease: boolean
  respond(answer: (n: number) => Answer): void
  issue(body: Answer['body']): void
  close(): Promise<void>
}

const chunk = new Uint8Array(64 * 1024).fill(0x78)

function defaultAnswer(n: number): Answer {
  return { body: { access_token: `token-${n}`, token_type: 'Bearer', expires_in: 3600 } }
}

function bodyOf(answer: Answer): { text: string | Uint8Array | null; json: boolean } {
  const { body } = answer
  if (body === undefined || body === null) return { text: null, json: false }
  if (typeof body === 'string' || body instanceof Uint8Array) return { text: body, json: false }
  return { text: JSON.stringify(body), json: true }
}

const mswServer = setupServer()
beforeAll(() => mswServer.listen({ onUnhandledRequest: 'bypass' }))
afterEach(() => mswServer.resetHandlers())
afterAll(() => mswServer.close())

/**
 * What both kinds of token endpoint keep: the requests seen, what to answer next, and how an
 * `endless` body went. The transports below add where it is and how it closes.
 */
class Recorder {
  readonly requests: Captured[] = []
  streamed = 0
  released = false
  #answer: (n: number) => Answer = defaultAnswer

  respond(answer: (n: number) => Answer): void {
    this.#answer = answer
  }

  /** Answers every request from now on with a 200 and `body` as JSON. */
  issue(body: Answer['body']): void {
    this.respond(() => ({ body }))
  }

  /** Records a request; the answer to the n-th one (from 1) is `answer(n)`. */
  receive(request: Captured): Answer {
    this.requests.push(request)
    return this.#answer(this.requests.length)
  }
}

/** msw answers global fetch() to a loopback origin nothing listens on. */
async function mswHarness(): Promise<Harness> {
  const origin = 'http://127.0.0.1:1'
  const recorder = new Recorder()
  mswServer.use(
    http.all(`${origin}/*`, async ({ request }) => {
      const url = new URL(request.url)
      const answer = recorder.receive({
        method: request.method,
        url: `${url.pathname}${url.search}`,
        headers: Object.fromEntries(request.headers),
        body: await request.text(),
      })
      if (answer.delay) await sleep(answer.delay, request.signal)
      const { text, json } = bodyOf(answer)
      const headers = {
        ...(json ? { 'content-type': 'application/json' } : {}),
        ...answer.headers,
      }
      const status = answer.status ?? 200
      if (answer.endless) {
        const stream = new ReadableStream<Uint8Array>({
          pull(controller) {
            recorder.streamed += chunk.byteLength
            controller.enqueue(chunk)
          },
          cancel() {
            recorder.released = true
          },
        })
        return new HttpResponse(stream, { status, headers })
      }
      if (answer.stall) {
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(String(text).slice(0, 10)))
          },
        })
        return new HttpResponse(stream, { status, headers })
      }
      return new HttpResponse(text, { status, headers })
    }),
  )
  return Object.assign(recorder, {
    origin,
    tokenUrl: `${origin}/oauth2/token`,
    dispatcher: undefined,
    reportsRelease: false,
    async close() {},
  })
}

/** A real node:http token endpoint on 127.0.0.1, reached through an undici Agent. */
function dispatcherHarness(): Promise<Harness> {
  const agent = new Agent()
  return nodeHarness(agent, () => agent.destroy())
}

/** A real node:http token endpoint on 127.0.0.1, reached through Node's own global fetch (msw off). */
function fetchHarness(): Promise<Harness> {
  mswServer.close()
  return nodeHarness(undefined, () => mswServer.listen({ onUnhandledRequest: 'bypass' }))
}

/** `afterClose` undoes what the transport set up, once the server is closed. */
async function nodeHarness(agent: Agent | undefined, afterClose: () => unknown): Promise<Harness> {
  const recorder = new Recorder()
  const server = await startServer(async (req, res, body) => {
    const answer = recorder.receive({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: flatten(req.headers),
      body: body.toString(),
    })
    if (answer.delay) {
      const gone = new AbortController()
      res.once('close', () => gone.abort())
      await sleep(answer.delay, gone.signal)
      if (res.destroyed) return
    }
    const { text, json } = bodyOf(answer)
    res.writeHead(answer.status ?? 200, {
      ...(json ? { 'content-type': 'application/json' } : {}),
      ...answer.headers,
    })
    if (answer.endless) {
      res.once('close', () => {
        recorder.released = true
      })
      const pump = (): void => {
        while (!res.destroyed) {
          recorder.streamed += chunk.byteLength
          if (!res.write(chunk)) {
            res.once('drain', pump)
            return
          }
        }
      }
      pump()
      return
    }
    if (answer.stall) {
      res.write(String(text).slice(0, 10))
      return
    }
    res.end(text ?? undefined)
  })
  return Object.assign(recorder, {
    origin: server.origin,
    tokenUrl: `${server.origin}/oauth2/token`,
    dispatcher: agent,
    reportsRelease: true,
    async close() {
      await server.close()
      await afterClose()
    },
  })
}

function flatten(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return flat
}

/** Resolves to the TokenRequestError `promise` rejects with; fails if it resolves or throws something else. */
async function rejection(promise: Promise<unknown>): Promise<TokenRequestError> {
  const error = await rejectionOf(promise)
  expect(error).toBeInstanceOf(TokenRequestError)
  expect((error as Error).name).toBe('TokenRequestError')
  return error as TokenRequestError
}

/** The `code`s along an error's cause chain (ECONNREFUSED, …). */
function causeCodes(error: unknown): string[] {
  const codes: string[] = []
  for (let current = error, depth = 0; current instanceof Error && depth < 10; depth++) {
    const { code } = current as Error & { code?: unknown }
    if (typeof code === 'string') codes.push(code)
    current = current.cause
  }
  return codes
}

/**
 * The TokenRequestError fields a case pins: a field given as `undefined` must be absent, one
 * left out is not checked, a RegExp must match.
 */
type ExpectedError = {
  [field in
    | 'status'
    | 'error'
    | 'errorDescription'
    | 'errorUri'
    | 'retryAfter'
    | 'message']?: unknown
}

interface ErrorCase {
  name: string
  answer: () => Answer
  /** An access token in the answer: it must not leak into the error either. */
  token?: string
  expected: ExpectedError
}

/** Compares only the fields `expected` names, so that one failure shows every mismatch at once. */
function expectErrorFields(error: TokenRequestError, expected: ExpectedError): void {
  const fields = Object.keys(expected) as (keyof ExpectedError)[]
  const actual = Object.fromEntries(fields.map((field) => [field, error[field]]))
  const matchers = Object.fromEntries(
    fields.map((field) => {
      const value = expected[field]
      return [field, value instanceof RegExp ? expect.stringMatching(value) : value]
    }),
  )
  expect(actual).toEqual(matchers)
}

const errorCases: ErrorCase[] = [
  {
    name: '400 with an RFC 6749 §5.2 error',
    answer: () => ({
      status: 400,
      body: {
        error: 'invalid_scope',
        error_description: 'The scope readers:write is not granted',
        error_uri: 'https://login.example.com/docs/errors#invalid_scope',
      },
    }),
    expected: {
      status: 400,
      error: 'invalid_scope',
      errorDescription: 'The scope readers:write is not granted',
      errorUri: 'https://login.example.com/docs/errors#invalid_scope',
      retryAfter: undefined,
      message: /400 invalid_scope: The scope readers:write is not granted/,
    },
  },
  {
    name: '401 invalid_client',
    answer: () => ({
      status: 401,
      headers: { 'www-authenticate': 'Basic realm="token"' },
      body: { error: 'invalid_client', error_description: 'Client authentication failed' },
    }),
    expected: {
      status: 401,
      error: 'invalid_client',
      errorDescription: 'Client authentication failed',
      errorUri: undefined,
      message: /401 invalid_client/,
    },
  },
  {
    name: '429 with Retry-After: 7 and an OAuth error',
    answer: () => ({ status: 429, headers: { 'retry-after': '7' }, body: { error: 'slow_down' } }),
    expected: { status: 429, retryAfter: 7, error: 'slow_down' },
  },
  {
    name: '503 with Retry-After: 7 and an HTML body',
    answer: () => ({
      status: 503,
      headers: { 'retry-after': '7', 'content-type': 'text/html' },
      body: '<html><body>Service Unavailable</body></html>',
    }),
    expected: {
      status: 503,
      retryAfter: 7,
      error: undefined,
      message: /503 without an OAuth error \(text\/html\)/,
    },
  },
  {
    name: '429 with an HTTP-date Retry-After',
    answer: () => ({
      status: 429,
      headers: { 'retry-after': new Date(Date.now() + 120_000).toUTCString() },
      body: 'Too Many Requests',
    }),
    expected: {
      status: 429,
      // HTTP dates have whole seconds: 119 or 120 from now, give or take a slow test.
      retryAfter: expect.toSatisfy(
        (seconds: number) => seconds >= 115 && seconds <= 121,
        'between 115 and 121',
      ),
    },
  },
  {
    name: '503 with an HTTP-date Retry-After in the past',
    answer: () => ({
      status: 503,
      headers: { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' },
      body: { error: 'temporarily_unavailable' },
    }),
    expected: { status: 503, retryAfter: 0, error: 'temporarily_unavailable' },
  },
  {
    name: '500 with an HTML body',
    answer: () => ({
      status: 500,
      headers: { 'content-type': 'text/html; charset=utf-8' },
      body: '<!doctype html><h1>Internal Server Error</h1>',
    }),
    expected: {
      status: 500,
      error: undefined,
      retryAfter: undefined,
      message: /500 without an OAuth error \(text\/html; charset=utf-8\)/,
    },
  },
  {
    name: '200 with an HTML body',
    answer: () => ({
      headers: { 'content-type': 'text/html' },
      body: '<html><body>Sign in</body></html>',
    }),
    expected: { status: 200, message: /200 with a body that is not a JSON object \(text\/html\)/ },
  },
  {
    name: '200 with truncated JSON',
    token: 'truncated-access-token-5a1b',
    answer: () => ({
      headers: { 'content-type': 'application/json' },
      body: '{"access_token":"truncated-access-token-5a1b","token_type":"Bea',
    }),
    expected: { status: 200, message: /not a JSON object/ },
  },
  {
    name: '200 with a JSON array',
    token: 'array-access-token-77c2',
    answer: () => ({ body: [{ access_token: 'array-access-token-77c2', token_type: 'Bearer' }] }),
    expected: { status: 200, message: /not a JSON object \(application\/json\)/ },
  },
  {
    name: '200 with JSON null',
    answer: () => ({ headers: { 'content-type': 'application/json' }, body: 'null' }),
    expected: { status: 200, message: /not a JSON object/ },
  },
  {
    name: '200 with an empty body',
    answer: () => ({ headers: { 'content-type': 'application/json' } }),
    expected: { status: 200, message: /not a JSON object/ },
  },
  {
    name: '200 without access_token',
    answer: () => ({ body: { token_type: 'Bearer', expires_in: 3600 } }),
    expected: { status: 200, error: undefined, message: /without an access_token/ },
  },
  {
    name: '200 with an empty access_token',
    answer: () => ({ body: { access_token: '', token_type: 'Bearer', expires_in: 3600 } }),
    expected: { status: 200, message: /without an access_token/ },
  },
  {
    name: '200 with a numeric access_token',
    // The number, as text, is the token that must not leak.
    token: '8675309123',
    answer: () => ({ body: { access_token: 8_675_309_123, token_type: 'Bearer' } }),
    expected: { status: 200, message: /without an access_token/ },
  },
  {
    name: '200 with a numeric token_type',
    token: 'typed-access-token-9d3e',
    answer: () => ({ body: { access_token: 'typed-access-token-9d3e', token_type: 42 } }),
    expected: { status: 200, message: /token_type that is not a string/ },
  },
  {
    name: '200 with an object expires_in',
    token: 'lifetime-access-token-e4f5',
    answer: () => ({
      body: { access_token: 'lifetime-access-token-e4f5', expires_in: { seconds: 3600 } },
    }),
    expected: { status: 200, message: /expires_in that is not a number/ },
  },
  {
    name: '200 with an OAuth error field',
    answer: () => ({
      body: { error: 'invalid_grant', error_description: 'grant not allowed for this client' },
    }),
    expected: {
      status: 200,
      error: 'invalid_grant',
      errorDescription: 'grant not allowed for this client',
      message: /200 invalid_grant: grant not allowed for this client/,
    },
  },
  {
    name: '400 whose error_description echoes the client secret (redacted)',
    answer: () => ({
      status: 400,
      body: {
        error: `invalid_client ${clientSecret}`,
        error_description: `bad credentials: secret=${clientSecret} form=${formEncode(clientSecret)} header=Basic ${basicCredential}`,
        error_uri: `https://login.example.com/err?secret=${formEncode(clientSecret)}`,
      },
    }),
    expected: {
      status: 400,
      error: 'invalid_client [redacted]',
      errorDescription:
        'bad credentials: secret=[redacted] form=[redacted] header=Basic [redacted]',
      errorUri: 'https://login.example.com/err?secret=[redacted]',
    },
  },
  {
    name: '200 with a body larger than 1 MiB',
    answer: () => ({
      headers: { 'content-type': 'application/json' },
      body: `{"access_token":"${'x'.repeat(1024 * 1024 + 100)}"}`,
    }),
    expected: { message: /more than 1048576 bytes; not a token response/ },
  },
]

const transports = [
  { transport: 'global fetch (msw)', start: mswHarness },
  { transport: 'global fetch (node:http)', start: fetchHarness },
  { transport: 'a dispatcher (node:http + undici Agent)', start: dispatcherHarness },
]

describe.each(transports)('clientCredentials() over $transport', ({ start }) => {
  let h: Harness

  beforeEach(async () => {
    h = await start()
  })
  afterEach(async () => {
    await h.close()
  })

  /** clientCredentials() for this transport's token endpoint. */
  function grant(options: Partial<ClientCredentialsOptions> = {}): FetchToken {
    return clientCredentials({
      tokenUrl: h.tokenUrl,
      clientId,
      clientSecret,
      dispatcher: h.dispatcher,
      ...options,
    })
  }

  function fetchToken(
    options: Partial<ClientCredentialsOptions> = {},
    signal: AbortSignal = new AbortController().signal,
  ): Promise<TokenResponse> {
    return grant(options)({ key: 'default', signal })
  }

  function only(): Captured {
    expect(h.requests).toHaveLength(1)
    return h.requests[0] as Captured
  }

  describe('request', () => {
    it('POSTs a form with grant_type=client_credentials and client_secret_basic by default', async () => {
      await fetchToken()
      const request = only()
      expect(request.method).toBe('POST')
      expect(request.url).toBe('/oauth2/token')
      expect(request.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded\b/)
      expect(request.headers.accept).toBe('application/json')
      const form = new URLSearchParams(request.body)
      expect([...form.keys()]).toEqual(['grant_type'])
      expect(form.get('grant_type')).toBe('client_credentials')
      // The secret travels only in the Authorization header.
      expect(request.body).not.toContain(formEncode(clientSecret))
      expect(request.headers.authorization).toBe(`Basic ${basicCredential}`)
    })

    it('form-encodes id and secret before base64 in client_secret_basic (RFC 6749 §2.3.1)', async () => {
      await fetchToken()
      const authorization = only().headers.authorization ?? ''
      const [scheme, credential] = authorization.split(' ')
      expect(scheme).toBe('Basic')
      const decoded = Buffer.from(credential ?? '', 'base64').toString('utf8')
      expect(decoded).toBe(`${formEncode(clientId)}:${formEncode(clientSecret)}`)
      expect(decoded).toBe(
        'reader+app%3A+%C3%BC%2F%2B%26%3D%25:p4ss+w%C3%B6rd%3A%C3%BC%2B%2F%3D%26%25-9f8e7d6c',
      )
      // The ':' inside id and secret was encoded, so the separator is unambiguous.
      const parts = decoded.split(':')
      expect(parts).toHaveLength(2)
      const decode = (part: string): string => decodeURIComponent(part.replaceAll('+', ' '))
      expect(parts.map(decode)).toEqual([clientId, clientSecret])
    })

    it('sends client_id and client_secret in the body and no authorization with client_secret_post', async () => {
      await fetchToken({ authMethod: 'client_secret_post' })
      const request = only()
      expect(request.headers.authorization).toBeUndefined()
      const form = new URLSearchParams(request.body)
      expect(form.get('grant_type')).toBe('client_credentials')
      expect(form.get('client_id')).toBe(clientId)
      expect(form.get('client_secret')).toBe(clientSecret)
      expect(form.getAll('client_secret')).toHaveLength(1)
    })

    it('sends a scope string as it is', async () => {
      await fetchToken({ scope: 'readers:read readers:list' })
      const request = only()
      expect(new URLSearchParams(request.body).get('scope')).toBe('readers:read readers:list')
      expect(request.body).toContain('scope=readers%3Aread+readers%3Alist')
    })

    it('joins a scope array with spaces (RFC 6749 §3.3)', async () => {
      await fetchToken({ scope: ['readers:read', 'readers:list', 'openid'] })
      const form = new URLSearchParams(only().body)
      expect(form.getAll('scope')).toEqual(['readers:read readers:list openid'])
    })

    it('sends no scope for an empty array', async () => {
      await fetchToken({ scope: [] })
      expect(new URLSearchParams(only().body).has('scope')).toBe(false)
    })

    it('sends audience', async () => {
      await fetchToken({ audience: 'https://api.example.com/' })
      expect(new URLSearchParams(only().body).get('audience')).toBe('https://api.example.com/')
    })

    it('repeats resource once per value (RFC 8707)', async () => {
      await fetchToken({ resource: ['https://a.example/', 'https://b.example/api'] })
      const request = only()
      expect(new URLSearchParams(request.body).getAll('resource')).toEqual([
        'https://a.example/',
        'https://b.example/api',
      ])
      expect(request.body).toContain(
        'resource=https%3A%2F%2Fa.example%2F&resource=https%3A%2F%2Fb.example%2Fapi',
      )
    })

    it('sends a single resource string once', async () => {
      await fetchToken({ resource: 'https://a.example/' })
      expect(new URLSearchParams(only().body).getAll('resource')).toEqual(['https://a.example/'])
    })

    it('adds extraParams, form-encoded', async () => {
      await fetchToken({
        scope: 'a',
        extraParams: { tenant: 'acme & co', 'x-ü': 'a=b+c' },
      })
      const form = new URLSearchParams(only().body)
      expect(form.get('grant_type')).toBe('client_credentials')
      expect(form.get('scope')).toBe('a')
      expect(form.get('tenant')).toBe('acme & co')
      expect(form.get('x-ü')).toBe('a=b+c')
    })

    it('keeps the query of the token URL', async () => {
      await fetchToken({ tokenUrl: new URL(`${h.origin}/oauth2/token?api-version=2.0`) })
      expect(only().url).toBe('/oauth2/token?api-version=2.0')
    })
  })

  describe('success', () => {
    it('camelCases the standard fields', async () => {
      h.issue({
        access_token: 'ok-access-token',
        token_type: 'Bearer',
        expires_in: 3600,
        scope: 'readers:read',
      })
      expect(await fetchToken()).toEqual({
        accessToken: 'ok-access-token',
        tokenType: 'Bearer',
        expiresIn: 3600,
        scope: 'readers:read',
      })
    })

    it('accepts expires_in as a numeric string', async () => {
      h.issue({ access_token: 'ok-access-token', expires_in: '3600' })
      const response = await fetchToken()
      expect(response.accessToken).toBe('ok-access-token')
      expect(Number(response.expiresIn)).toBe(3600)
      expect(response).not.toHaveProperty('expires_in')
      expect(response.tokenType).toBeUndefined()
    })

    it('keeps every other field under its wire name', async () => {
      h.issue({
        access_token: 'ok-access-token',
        token_type: 'N_A',
        expires_in: 60,
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        id_token: 'header.payload.signature',
        refresh_token: 'rt',
        'ext-expires_in': 120,
        nested: { a: [1, 2] },
      })
      const response = await fetchToken()
      expect(response).toEqual({
        accessToken: 'ok-access-token',
        tokenType: 'N_A',
        expiresIn: 60,
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        id_token: 'header.payload.signature',
        refresh_token: 'rt',
        'ext-expires_in': 120,
        nested: { a: [1, 2] },
      })
      for (const wire of ['access_token', 'token_type', 'expires_in', 'idToken']) {
        expect(response).not.toHaveProperty(wire)
      }
    })

    it('treats expires_in null as absent', async () => {
      h.issue({ access_token: 'ok-access-token', expires_in: null })
      const response = await fetchToken()
      expect(response).toEqual({ accessToken: 'ok-access-token' })
      expect(Object.hasOwn(response, 'expiresIn')).toBe(false)
    })

    it('does not let a __proto__ field change the prototype of the response', async () => {
      h.respond(() => ({
        headers: { 'content-type': 'application/json' },
        body: '{"access_token":"ok-access-token","__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
      }))
      const response = await fetchToken()
      expect(response.accessToken).toBe('ok-access-token')
      expect(Object.getPrototypeOf(response)).toBe(Object.prototype)
      expect((response as { polluted?: unknown }).polluted).toBeUndefined()
      expect(({} as { polluted?: unknown }).polluted).toBeUndefined()
    })
  })

  describe('errors', () => {
    it.each(errorCases)('$name → TokenRequestError, no secret in it', async (errorCase) => {
      h.respond(errorCase.answer)
      const started = Date.now()
      const error = await rejection(fetchToken())
      expect(Date.now() - started).toBeLessThan(1500)
      expectErrorFields(error, errorCase.expected)
      expectNoSecrets(error, [...clientSecrets, ...(errorCase.token ? [errorCase.token] : [])])
    })

    it('redacts a secret echoed back with client_secret_post too', async () => {
      h.respond(() => ({
        status: 401,
        body: { error: 'invalid_client', error_description: `unknown secret "${clientSecret}"` },
      }))
      const error = await rejection(fetchToken({ authMethod: 'client_secret_post' }))
      expect(error.status).toBe(401)
      expect(error.errorDescription).toBe('unknown secret "[redacted]"')
      expectNoSecrets(error, clientSecrets)
    })

    it.each([302, 307])('does not follow a %i redirect from the token endpoint', async (status) => {
      h.respond((n) =>
        n === 1
          ? { status, headers: { location: `${h.origin}/elsewhere` } }
          : { body: { access_token: 'redirected-access-token', expires_in: 3600 } },
      )
      const error = await rejection(fetchToken())
      expect(error.status).toBe(status)
      expect(error.message).toMatch(/redirect/)
      expect(h.requests.map((request) => request.url)).toEqual(['/oauth2/token'])
      expectNoSecrets(error, [...clientSecrets, 'redirected-access-token'])
    })

    it('stops reading a body that never ends after 1 MiB', async () => {
      h.respond(() => ({ headers: { 'content-type': 'application/json' }, endless: true }))
      const started = Date.now()
      const error = await rejection(fetchToken())
      expect(Date.now() - started).toBeLessThan(1500)
      expect(error.message).toMatch(/more than 1048576 bytes/)
      expect(error.status).toBeUndefined()
      expectNoSecrets(error, clientSecrets)
      // It stopped pulling: no more than socket and stream buffers' worth beyond the cap.
      const streamedAtRejection = h.streamed
      if (h.reportsRelease) await vi.waitFor(() => expect(h.released).toBe(true), 1000)
      await sleep(50)
      expect(h.streamed).toBeLessThan(16 * 1024 * 1024)
      expect(h.streamed - streamedAtRejection).toBeLessThan(8 * 1024 * 1024)
    })

    it('wraps a refused connection in a TokenRequestError with a cause', async () => {
      const closed = await startServer(() => {})
      await closed.close()
      const error = await rejection(fetchToken({ tokenUrl: `${closed.origin}/oauth2/token` }))
      expect(error.cause).toBeDefined()
      expect(causeCodes(error)).toContain('ECONNREFUSED')
      expect(error.status).toBeUndefined()
      expect(error.message).toBe(
        `Token endpoint ${closed.origin}/oauth2/token could not be reached`,
      )
      expectNoSecrets(error, clientSecrets)
    })
  })

  describe('signal', () => {
    /** Aborts a token fetch 50 ms in: it must reject with the abort reason well within a second. */
    async function expectPromptAbort(): Promise<void> {
      const controller = new AbortController()
      const reason = new Error('caller gave up')
      setTimeout(() => controller.abort(reason), 50)
      const started = Date.now()
      await expect(fetchToken({}, controller.signal)).rejects.toBe(reason)
      expect(Date.now() - started).toBeLessThan(1000)
    }

    it('rejects promptly with the abort reason while the endpoint is slow', async () => {
      h.respond(() => ({ delay: 5000, body: { access_token: 'late-access-token' } }))
      await expectPromptAbort()
      expect(h.requests).toHaveLength(1)
    })

    it('rejects promptly with the abort reason while the body is still arriving', async () => {
      h.respond(() => ({ stall: true, body: { access_token: 'late-access-token' } }))
      await expectPromptAbort()
    })

    it('rejects with the reason of an already aborted signal', async () => {
      const reason = new Error('too late')
      await expect(fetchToken({}, AbortSignal.abort(reason))).rejects.toBe(reason)
    })
  })

  describe('through TokenCache', () => {
    it.each([0, -5, 'abc', 1e12])('rejects expires_in %s and caches nothing', async (expiresIn) => {
      const clock = manualClock(Date.now())
      h.respond((n) =>
        n === 1
          ? { body: { access_token: 'bad-lifetime-token', expires_in: expiresIn } }
          : { body: { access_token: `good-token-${n}`, expires_in: 3600 } },
      )
      const tokens = new TokenCache({ fetchToken: grant(), now: clock.now })
      const error = await rejection(tokens.get())
      expect(error.message).toMatch(/expires_in/)
      expectNoSecrets(error, [...clientSecrets, 'bad-lifetime-token'])
      expect(h.requests).toHaveLength(1)
      // Past any backoff after the failure: the next get() asks the endpoint again.
      clock.advance(10 * 60_000)
      const token = await tokens.get()
      expect(token.accessToken).toBe('good-token-2')
      expect(h.requests).toHaveLength(2)
    })

    it('turns a numeric-string expires_in into a lifetime', async () => {
      const clock = manualClock(Date.now())
      h.issue({ access_token: 'string-lifetime-token', token_type: 'Bearer', expires_in: '3600' })
      const tokens = new TokenCache({ fetchToken: grant(), now: clock.now })
      const token = await tokens.get()
      expect(token).toMatchObject({
        accessToken: 'string-lifetime-token',
        tokenType: 'Bearer',
        expiresIn: 3600,
        expiresAt: clock.now() + 3_600_000,
        obtainedAt: clock.now(),
      })
      await tokens.get()
      expect(h.requests).toHaveLength(1)
    })
  })
})

describe('clientCredentials() options', () => {
  const base = { tokenUrl: 'http://127.0.0.1:1/token', clientId, clientSecret }

  it('refuses a missing clientId or clientSecret', () => {
    expect(() => clientCredentials({ ...base, clientId: '' })).toThrow(/clientId/)
    expect(() => clientCredentials({ ...base, clientSecret: '' })).toThrow(/clientSecret/)
  })

  it('refuses a token URL that is not http(s)', () => {
    expect(() => clientCredentials({ ...base, tokenUrl: 'file:///etc/passwd' })).toThrow(TypeError)
  })

  it('refuses a token URL with userinfo, without quoting it', () => {
    let thrown: unknown
    try {
      clientCredentials({ ...base, tokenUrl: 'http://user:url-password-1234@127.0.0.1:1/token' })
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(TypeError)
    expectNoSecrets(thrown, ['url-password-1234'])
  })

  it('refuses an unknown authMethod', () => {
    expect(() =>
      clientCredentials({
        ...base,
        authMethod: 'private_key_jwt' as ClientCredentialsOptions['authMethod'],
      }),
    ).toThrow(/authMethod/)
  })
})

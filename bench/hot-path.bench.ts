// Micro-benchmarks of the hot path, to catch regressions: `npm run bench:micro`
// (vitest bench; not part of `npm test`, which runs tests/**/*.test.ts only).
// They import the TypeScript source, so no build is needed.
import type { Dispatcher } from 'undici'
import { bench, describe } from 'vitest'
import { internalsOf } from '../lib/cache/internal.js'
import { authorizationHeader, tokenHeaders, withTokenHeaders } from '../lib/handler/headers.js'
import { accessToken, TokenCache } from '../lib/index.js'
import { instantDownstream } from '../tests/support/handlers.js'

const origin = 'https://api.example.com'
const fetchToken = async () => ({ accessToken: 'bench-token', expiresIn: 3600 })

const timing = { time: 300, warmupTime: 100 }

const tokens = new TokenCache({ fetchToken })
const token = await tokens.get() // cached from here on

describe('TokenCache, cached token', () => {
  bench(
    'await tokens.get()',
    async () => {
      await tokens.get()
    },
    timing,
  )
  bench(
    'peekToken(): the interceptor’s synchronous read',
    () => {
      internalsOf(tokens).peek('default')
    },
    timing,
  )
})

const set = tokenHeaders(authorizationHeader(token))
const shapes = {
  none: undefined,
  object: { accept: 'application/json', Authorization: 'Bearer caller-set', 'x-request-id': '1' },
  flat: ['accept', 'application/json', 'Authorization', 'Bearer caller-set', 'x-request-id', '1'],
  pairs: [
    ['accept', 'application/json'],
    ['Authorization', 'Bearer caller-set'],
    ['x-request-id', '1'],
  ],
  iterable: new Map([
    ['accept', 'application/json'],
    ['Authorization', 'Bearer caller-set'],
    ['x-request-id', '1'],
  ]),
} as const

describe('header normalisation: withTokenHeaders()', () => {
  for (const [name, headers] of Object.entries(shapes)) {
    bench(
      name,
      () => {
        withTokenHeaders(
          headers as Parameters<typeof withTokenHeaders>[0],
          set,
          'https://api.example.com',
        )
      },
      timing,
    )
  }
  bench(
    'a new token: authorizationHeader() + tokenHeaders()',
    () => {
      tokenHeaders(authorizationHeader(token))
    },
    timing,
  )
})

// The composed dispatch with a downstream that answers 200 at once: no sockets, only the
// interceptor's own cost (bench/memory.js measures the same at 1 000 000 requests).
type Dispatch = (
  options: Dispatcher.DispatchOptions,
  handler: Dispatcher.DispatchHandler,
) => boolean
const downstream: Dispatch = instantDownstream
class CallerHandler implements Dispatcher.DispatchHandler {
  onRequestStart(): void {}
  onResponseStart(): void {}
  onResponseData(): void {}
  onResponseEnd(): void {}
  onResponseError(_controller: unknown, error: Error): void {
    throw error
  }
}
const compose = (interceptor: Dispatcher.DispatcherComposeInterceptor): Dispatch =>
  interceptor(downstream as Dispatcher['dispatch']) as Dispatch
const passThrough = compose((dispatch) => (options, handler) => dispatch(options, handler))
const withToken = compose(accessToken({ origins: origin, tokens }))
// Options as undici.request sends them (no body key) and as fetch does (body: null), built
// as literals: spreading and adding a key would measure the benchmark's own object building.
const requestOptions = (): Dispatcher.DispatchOptions => ({
  origin,
  path: '/readers',
  method: 'GET',
  headers: { accept: 'application/json' },
})
const fetchOptions = (): Dispatcher.DispatchOptions => ({
  origin,
  path: '/readers',
  method: 'GET',
  headers: [['accept', 'application/json']] as unknown as string[],
  body: null,
})
describe('interceptor dispatch, cached token, no sockets', () => {
  bench(
    'pass-through interceptor',
    () => {
      passThrough(requestOptions(), new CallerHandler())
    },
    timing,
  )
  bench(
    'accessToken(), options as undici.request sends them',
    () => {
      withToken(requestOptions(), new CallerHandler())
    },
    timing,
  )
  bench(
    'accessToken(), options as fetch sends them',
    () => {
      withToken(fetchOptions(), new CallerHandler())
    },
    timing,
  )
})

// The cached-token path must be synchronous: the request reaches the dispatcher
// below within the call to dispatch, with no promise in between. Only a miss, an
// expiry or a 401 takes the async path. (Its speed is measured in bench/, not here.)
import { describe, expect, test } from 'vitest'
import { accessToken, TokenCache } from '../lib/index.js'
import { turns } from './support/async.js'
import { recordingHandler } from './support/handlers.js'
import { tokenSource } from './support/token-sources.js'

interface Seen {
  headers: unknown
  handler: object
}

function harness(options: { tokens: TokenCache; retryOnUnauthorized?: boolean }) {
  const seen: Seen[] = []
  const downstream = (opts: { headers?: unknown }, handler: object): boolean => {
    seen.push({ headers: opts.headers, handler })
    return true
  }
  const interceptor = accessToken({ origins: 'https://api.example.com', ...options })
  const dispatch = (interceptor as unknown as (d: typeof downstream) => typeof downstream)(
    downstream,
  )
  const caller = recordingHandler().handler
  const send = (origin: string) =>
    dispatch(
      { origin, path: '/r', method: 'GET', headers: { accept: 'application/json' } } as never,
      caller,
    )
  return { seen, send, caller }
}

describe('the cached-token path is synchronous', () => {
  test('with a cached token, the request is dispatched before dispatch() returns', async () => {
    const tokens = new TokenCache({
      fetchToken: async () => ({ accessToken: 'hot', expiresIn: 3600 }),
    })
    await tokens.get()
    const { seen, send } = harness({ tokens })
    send('https://api.example.com')
    expect(seen).toHaveLength(1)
    expect(seen[0]?.headers).toEqual({ accept: 'application/json', authorization: 'Bearer hot' })
  })

  test('with retries off, the caller’s own handler goes down: no handler of ours in between', async () => {
    const tokens = new TokenCache({
      fetchToken: async () => ({ accessToken: 'hot', expiresIn: 3600 }),
    })
    await tokens.get()
    const { seen, send, caller } = harness({ tokens, retryOnUnauthorized: false })
    send('https://api.example.com')
    expect(seen[0]?.handler).toBe(caller)
  })

  test('another origin passes through synchronously, untouched, with no token fetched', () => {
    const source = tokenSource(() => ({ accessToken: 'hot' }))
    const tokens = new TokenCache({ fetchToken: source.fetchToken })
    const { seen, send, caller } = harness({ tokens })
    send('https://elsewhere.example.com')
    expect(seen).toEqual([{ headers: { accept: 'application/json' }, handler: caller }])
    expect(source.calls).toHaveLength(0)
  })

  test('a miss goes async: nothing is dispatched until the token arrives', async () => {
    const tokens = new TokenCache({
      fetchToken: async () => ({ accessToken: 'cold', expiresIn: 3600 }),
    })
    const { seen, send } = harness({ tokens })
    send('https://api.example.com')
    expect(seen).toHaveLength(0)
    await tokens.get()
    await turns()
    expect(seen).toHaveLength(1)
  })
})

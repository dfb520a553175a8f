import { describe, expect, test } from 'vitest'
import { type FetchToken, TokenCache, TokenRequestError } from '../lib/index.js'

/** A fetchToken that fails while `failing` is set, counting calls. */
function flakySource(
  error: () => Error = () => new TokenRequestError('endpoint down', { status: 503 }),
) {
  const state = { failing: true, calls: 0 }
  const fetchToken: FetchToken = async () => {
    state.calls++
    if (state.failing) throw error()
    return { accessToken: `t${state.calls}`, expiresIn: 3600 }
  }
  return { state, fetchToken }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (error: unknown) => error,
  )
}

describe('failure backoff', () => {
  test('after a failure, callers inside the window get the last error at once; after it, one new try', async () => {
    let now = 0
    const { state, fetchToken } = flakySource()
    const tokens = new TokenCache({ fetchToken, now: () => now })
    const first = await rejection(tokens.get())
    expect(first).toBeInstanceOf(TokenRequestError)
    expect(state.calls).toBe(1)
    now = 700 // inside the first window (1 s − 20 % at the least)
    const inside = await Promise.all(Array.from({ length: 20 }, () => rejection(tokens.get())))
    expect(inside.every((error) => error === first)).toBe(true)
    expect(state.calls).toBe(1)
    now = 1_300 // past it (1 s + 20 % at the most)
    await rejection(tokens.get())
    expect(state.calls).toBe(2)
  })

  test('delays double with each failure, ±20 %, capped at 30 s', async () => {
    let now = 0
    const { state, fetchToken } = flakySource()
    const tokens = new TokenCache({ fetchToken, now: () => now })
    const windows: number[] = []
    for (let failure = 1; failure <= 8; failure++) {
      await rejection(tokens.get())
      const calls = state.calls
      // find the end of this window in 50 ms steps (bounded)
      const start = now
      for (let step = 0; step < 1_000 && state.calls === calls; step++) {
        now += 50
        await rejection(tokens.get())
      }
      windows.push(now - start)
    }
    const expected = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
    windows.forEach((window, i) => {
      expect(window).toBeGreaterThanOrEqual((expected[i] as number) * 0.8)
      expect(window).toBeLessThanOrEqual((expected[i] as number) * 1.2 + 50)
    })
  })

  test('Retry-After on 429 is honoured: no token request before it', async () => {
    let now = 0
    const { state, fetchToken } = flakySource(
      () => new TokenRequestError('slow down', { status: 429, retryAfter: 2 }),
    )
    const tokens = new TokenCache({ fetchToken, now: () => now })
    await rejection(tokens.get())
    for (now = 0; now < 2_000; now += 100) await rejection(tokens.get())
    expect(state.calls).toBe(1)
    now = 2_000
    await rejection(tokens.get())
    expect(state.calls).toBe(2)
  })

  test('a huge Retry-After is capped at 5 minutes', async () => {
    let now = 0
    const { state, fetchToken } = flakySource(
      () => new TokenRequestError('go away', { status: 503, retryAfter: 86_400 }),
    )
    const tokens = new TokenCache({ fetchToken, now: () => now })
    await rejection(tokens.get())
    now = 299_000
    await rejection(tokens.get())
    expect(state.calls).toBe(1)
    now = 300_000
    await rejection(tokens.get())
    expect(state.calls).toBe(2)
  })

  test('a success resets the backoff; keys back off independently', async () => {
    let now = 0
    const { state, fetchToken } = flakySource()
    const tokens = new TokenCache({ fetchToken, now: () => now })
    await rejection(tokens.get('a'))
    now = 1_300
    await rejection(tokens.get('a')) // second failure: ~2 s window
    await rejection(tokens.get('b')) // another key is not blocked by a's window
    expect(state.calls).toBe(3)
    now = 4_000
    state.failing = false
    expect((await tokens.get('a')).accessToken).toBe('t4')
    await tokens.invalidate('a')
    state.failing = true
    await rejection(tokens.get('a'))
    now += 1_300 // back to the first, 1 s window
    await rejection(tokens.get('a'))
    expect(state.calls).toBe(6)
  })

  test('backoff: false retries at once', async () => {
    const { state, fetchToken } = flakySource()
    const tokens = new TokenCache({ fetchToken, backoff: false })
    await rejection(tokens.get())
    await rejection(tokens.get())
    expect(state.calls).toBe(2)
  })
})

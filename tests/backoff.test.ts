import { describe, expect, test } from 'vitest'
import { TokenCache, TokenRequestError } from '../lib/index.js'
import { rejectionOf as rejection } from './support/async.js'
import { manualClock } from './support/clock.js'
import { failingSource } from './support/token-sources.js'

/** What the token source throws while it is failing, unless a test says otherwise. */
const endpointDown = () => new TokenRequestError('endpoint down', { status: 503 })

describe('failure backoff', () => {
  test('after a failure, callers inside the window get the last error at once; after it, one new try', async () => {
    const clock = manualClock(0)
    const source = failingSource(endpointDown)
    const tokens = new TokenCache({ fetchToken: source.fetchToken, now: clock.now })
    const first = await rejection(tokens.get())
    expect(first).toBeInstanceOf(TokenRequestError)
    expect(source.calls.length).toBe(1)
    clock.set(700) // inside the first window (1 s − 20 % at the least)
    const inside = await Promise.all(Array.from({ length: 20 }, () => rejection(tokens.get())))
    expect(inside.every((error) => error === first)).toBe(true)
    expect(source.calls.length).toBe(1)
    clock.set(1_300) // past it (1 s + 20 % at the most)
    await rejection(tokens.get())
    expect(source.calls.length).toBe(2)
  })

  test('delays double with each failure, ±20 %, capped at 30 s', async () => {
    const clock = manualClock(0)
    const source = failingSource(endpointDown)
    const tokens = new TokenCache({ fetchToken: source.fetchToken, now: clock.now })
    const windows: number[] = []
    for (let failure = 1; failure <= 8; failure++) {
      await rejection(tokens.get())
      const calls = source.calls.length
      // find the end of this window in 50 ms steps (bounded)
      const start = clock.now()
      for (let step = 0; step < 1_000 && source.calls.length === calls; step++) {
        clock.advance(50)
        await rejection(tokens.get())
      }
      windows.push(clock.now() - start)
    }
    const expected = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
    windows.forEach((window, i) => {
      expect(window).toBeGreaterThanOrEqual((expected[i] as number) * 0.8)
      expect(window).toBeLessThanOrEqual((expected[i] as number) * 1.2 + 50)
    })
  })

  test('Retry-After on 429 is honoured: no token request before it', async () => {
    const clock = manualClock(0)
    const source = failingSource(
      () => new TokenRequestError('slow down', { status: 429, retryAfter: 2 }),
    )
    const tokens = new TokenCache({ fetchToken: source.fetchToken, now: clock.now })
    await rejection(tokens.get())
    for (clock.set(0); clock.now() < 2_000; clock.advance(100)) await rejection(tokens.get())
    expect(source.calls.length).toBe(1)
    clock.set(2_000)
    await rejection(tokens.get())
    expect(source.calls.length).toBe(2)
  })

  test('a huge Retry-After is capped at 5 minutes', async () => {
    const clock = manualClock(0)
    const source = failingSource(
      () => new TokenRequestError('go away', { status: 503, retryAfter: 86_400 }),
    )
    const tokens = new TokenCache({ fetchToken: source.fetchToken, now: clock.now })
    await rejection(tokens.get())
    clock.set(299_000)
    await rejection(tokens.get())
    expect(source.calls.length).toBe(1)
    clock.set(300_000)
    await rejection(tokens.get())
    expect(source.calls.length).toBe(2)
  })

  test('a success resets the backoff; keys back off independently', async () => {
    const clock = manualClock(0)
    const source = failingSource(endpointDown)
    const tokens = new TokenCache({ fetchToken: source.fetchToken, now: clock.now })
    await rejection(tokens.get('a'))
    clock.set(1_300)
    await rejection(tokens.get('a')) // second failure: ~2 s window
    await rejection(tokens.get('b')) // another key is not blocked by a's window
    expect(source.calls.length).toBe(3)
    clock.set(4_000)
    source.failing = false
    expect((await tokens.get('a')).accessToken).toBe('t4')
    await tokens.invalidate('a')
    source.failing = true
    await rejection(tokens.get('a'))
    clock.advance(1_300) // back to the first, 1 s window
    await rejection(tokens.get('a'))
    expect(source.calls.length).toBe(6)
  })

  test('backoff: false retries at once', async () => {
    const source = failingSource(endpointDown)
    const tokens = new TokenCache({ fetchToken: source.fetchToken, backoff: false })
    await rejection(tokens.get())
    await rejection(tokens.get())
    expect(source.calls.length).toBe(2)
  })
})

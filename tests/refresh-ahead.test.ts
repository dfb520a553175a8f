import { describe, expect, test } from 'vitest'
import { TokenCache } from '../lib/index.js'
import { sleep, turns } from './support/async.js'
import { manualClock } from './support/clock.js'
import { gatedSource, tokenSource } from './support/token-sources.js'

/** Lets queued promise work (store reads, the background refresh) run. */
const settle = () => turns(5)

describe('refresh-ahead', () => {
  test('past 0.8 of the lifetime a read gets the cached token at once and starts one background refresh', async () => {
    const clock = manualClock(1_000_000)
    const source = gatedSource(100) // 100 s; skew 10 s (a tenth); refresh at 80 s
    const tokens = new TokenCache({ fetchToken: source.fetchToken, now: clock.now })
    const first = tokens.get()
    await source.release()
    expect((await first).accessToken).toBe('t1')

    clock.advance(79_000)
    expect((await tokens.get()).accessToken).toBe('t1')
    await settle()
    expect(source.calls).toBe(1) // before the refresh point nothing happens

    clock.advance(2_000) // 81 s: past the refresh point, still usable
    const during = await Promise.all(Array.from({ length: 50 }, () => tokens.get()))
    // everybody was served while the refresh is still waiting on the endpoint
    expect(during.every((token) => token.accessToken === 't1')).toBe(true)
    await settle()
    expect(source.waiting).toBe(1)
    expect(source.calls).toBe(2) // one background refresh for 50 reads
    await source.release()
    await settle()
    expect((await tokens.get()).accessToken).toBe('t2')
    expect(source.calls).toBe(2)
  })

  test('refreshAhead: false refreshes only at expiry, and readers wait then', async () => {
    const clock = manualClock(0)
    const source = gatedSource(100)
    const tokens = new TokenCache({
      fetchToken: source.fetchToken,
      now: clock.now,
      refreshAhead: false,
    })
    const first = tokens.get()
    await source.release()
    await first
    clock.set(85_000)
    expect((await tokens.get()).accessToken).toBe('t1')
    await settle()
    expect(source.calls).toBe(1)
    clock.set(90_000) // expiresAt − skew
    let resolved = false
    const waiting = tokens.get().then((token) => {
      resolved = true
      return token
    })
    await settle()
    expect(resolved).toBe(false)
    await source.release()
    expect((await waiting).accessToken).toBe('t2')
  })

  test('a failed background refresh keeps the old token serving, retries with backoff, and errors only once the token is unusable', async () => {
    const clock = manualClock(0)
    const source = gatedSource(100)
    const tokens = new TokenCache({
      fetchToken: source.fetchToken,
      now: clock.now,
      backoff: { initialDelay: 1_000, jitter: 0 },
    })
    const first = tokens.get()
    await source.release()
    await first
    clock.set(81_000)
    expect((await tokens.get()).accessToken).toBe('t1')
    await source.release(new Error('endpoint down'))
    await settle()
    // still served, no new request inside the backoff window
    clock.set(81_500)
    expect((await tokens.get()).accessToken).toBe('t1')
    await settle()
    expect(source.calls).toBe(2)
    // past the window: the next read tries again in the background
    clock.set(82_100)
    expect((await tokens.get()).accessToken).toBe('t1')
    await settle()
    expect(source.calls).toBe(3)
    await source.release(new Error('still down'))
    await settle()
    // the token is unusable at 90 s; then a caller sees the error (after the backoff window)
    clock.set(95_000)
    const failing = tokens.get()
    await source.release(new Error('down for good'))
    await expect(failing).rejects.toMatchObject({ name: 'TokenRequestError' })
  })

  test('a short token from a slow endpoint rolls over without anyone waiting (real time: 2 s tokens, 300 ms endpoint)', async () => {
    const run = async (refreshAhead: number | false) => {
      const source = tokenSource((n) => ({ accessToken: `t${n}`, expiresIn: 2 }), { delay: 300 })
      const tokens = new TokenCache({ refreshAhead, fetchToken: source.fetchToken })
      let waited = 0
      const until = Date.now() + 3_000
      await tokens.get()
      while (Date.now() < until) {
        const asked = Date.now()
        const token = await tokens.get()
        // A token obtained after the read began means that read waited for the endpoint.
        if (token.obtainedAt > asked) waited++
        await sleep(20)
      }
      return { waited, calls: source.calls.length }
    }
    const adaptive = await run(0.8)
    const blocking = await run(false)
    expect(adaptive.waited).toBe(0)
    expect(adaptive.calls).toBeGreaterThanOrEqual(2) // it did roll over
    expect(blocking.waited).toBeGreaterThan(0) // the contrast: without refresh-ahead readers wait
  }, 15_000)
})

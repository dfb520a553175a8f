// @ts-check
// A clock a test moves by hand, for `now` options (TokenCache, accessToken()): vitest's fake
// timers break undici, so expiry runs on an injected clock instead.

/** The default start: 2026-01-01T00:00:00Z, in epoch ms. */
export const t0 = Date.UTC(2026, 0, 1)

/**
 * @typedef {object} ManualClock
 * @property {() => number} now  the time, epoch ms; pass it as `now`
 * @property {(epochMs: number) => void} set
 * @property {(ms: number) => void} advance
 */

/**
 * @param {number} [start]  epoch ms
 * @returns {ManualClock}
 */
export function manualClock(start = t0) {
  let time = start
  return {
    now: () => time,
    set(epochMs) {
      time = epochMs
    },
    advance(ms) {
      time += ms
    },
  }
}

// The lifecycle every suite here gives its oidc-provider environment: started before the
// file's tests (or before each test), closed after them, and after every test a check
// that oidc-provider reported no `server_error` — a misconfigured provider answers
// 500s that would otherwise pass as "the package failed closed".
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest'
import type { Agents } from './http.js'
import {
  resetRecords,
  type StrongEnvironment,
  type StrongEnvironmentOptions,
  startStrongEnvironment,
} from './mtls-provider.js'

/** What the hooks need of an environment (provider.ts, mtls-provider.ts, dpop-provider.ts). */
export interface ProviderEnvironment {
  readonly serverErrors: Error[]
  close(): Promise<void>
}

export interface UseEnvironmentOptions<E> {
  /** 'file' (default): one environment for the file's (or describe block's) tests; 'test': a fresh one each. */
  per?: 'file' | 'test'
  /** Before each test: clear what the previous one recorded (grants, API hits…). */
  reset?: (env: E) => void
  /** After each test, before the server-error check: close what the test opened. */
  cleanUp?: () => Promise<void> | void
}

/**
 * Registers the hooks in the calling scope and returns the environment they started: a
 * stand-in that reads every property from the current environment, so that tests write
 * `env.grants` as if it were the environment itself. Reading it outside a test throws.
 */
export function useEnvironment<E extends ProviderEnvironment>(
  start: () => Promise<E>,
  options: UseEnvironmentOptions<E> = {},
): E {
  let current: E | undefined
  const environment = (): E => {
    if (current === undefined) throw new Error('the environment is only there during a test')
    return current
  }
  const perTest = options.per === 'test'

  ;(perTest ? beforeEach : beforeAll)(async () => {
    current = await start()
  })
  if (options.reset !== undefined) {
    const reset = options.reset
    beforeEach(() => reset(environment()))
  }
  afterEach(async () => {
    await options.cleanUp?.()
    const env = current
    // start() failed: that failure is the test's, there is nothing to check.
    if (env === undefined) return
    if (perTest) {
      current = undefined
      await env.close()
    }
    expect(env.serverErrors, 'oidc-provider server errors').toEqual([])
  })
  if (!perTest) {
    afterAll(async () => {
      await current?.close()
      current = undefined
    })
  }

  return new Proxy({} as E, {
    get: (_, property) => Reflect.get(environment(), property),
    set: (_, property, value) => Reflect.set(environment(), property, value),
  })
}

/**
 * The strong-authentication environment (mtls-provider.ts) for the calling scope's tests:
 * what the previous test recorded cleared before each, the Agents it made closed after.
 */
export function useStrongEnvironment(
  agents: Agents,
  options: StrongEnvironmentOptions = {},
): StrongEnvironment {
  return useEnvironment(() => startStrongEnvironment(options), {
    reset: resetRecords,
    cleanUp: () => agents.closeAll(),
  })
}

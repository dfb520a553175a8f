import { channel, type TracingChannel, tracingChannel } from 'node:diagnostics_channel'

/**
 * `node:diagnostics_channel` channels. Messages carry the key, timings, status
 * and a token's fingerprint (a short SHA-256 prefix) — never a token or secret.
 *
 * @example
 * import { subscribe } from 'node:diagnostics_channel'
 * subscribe('undici-access-token:fetch:error', ({ key, durationMs, error }) =>
 *   logger.warn({ key, durationMs, error }, 'token fetch failed'))
 */
export const channels: {
  readonly fetchStart: DiagnosticsChannel<FetchStartMessage>
  readonly fetchSuccess: DiagnosticsChannel<FetchSuccessMessage>
  readonly fetchError: DiagnosticsChannel<FetchErrorMessage>
  readonly cacheHit: DiagnosticsChannel<CacheHitMessage>
  readonly cacheMiss: DiagnosticsChannel<CacheMissMessage>
  readonly refreshAhead: DiagnosticsChannel<RefreshAheadMessage>
  readonly retry: DiagnosticsChannel<RetryMessage>
  readonly invalidate: DiagnosticsChannel<InvalidateMessage>
  readonly backoff: DiagnosticsChannel<BackoffMessage>
  readonly storeError: DiagnosticsChannel<StoreErrorMessage>
} = {
  fetchStart: typed('undici-access-token:fetch:start'),
  fetchSuccess: typed('undici-access-token:fetch:success'),
  fetchError: typed('undici-access-token:fetch:error'),
  cacheHit: typed('undici-access-token:cache:hit'),
  cacheMiss: typed('undici-access-token:cache:miss'),
  refreshAhead: typed('undici-access-token:cache:refresh-ahead'),
  retry: typed('undici-access-token:retry'),
  invalidate: typed('undici-access-token:invalidate'),
  backoff: typed('undici-access-token:backoff'),
  storeError: typed('undici-access-token:store:error'),
}

/**
 * A `TracingChannel` around every token fetch: `tracing:undici-access-token:fetch:start`,
 * `:end`, `:asyncStart`, `:asyncEnd` and `:error`, one message object for all five. The fetch
 * runs inside `start.runStores(message)`, so a store bound to `start` (an APM's span) is the
 * active context of the token request itself.
 */
export const fetchTracing: TracingChannel<unknown, FetchTraceMessage> = tracingChannel(
  'undici-access-token:fetch',
)

/** Every channel's name, e.g. to subscribe to all of them: the events, then the tracing ones. */
export const channelNames: readonly string[] = [
  ...Object.values(channels),
  fetchTracing.start,
  fetchTracing.end,
  fetchTracing.asyncStart,
  fetchTracing.asyncEnd,
  fetchTracing.error,
].map((c) => String(c.name))

/** The part of a `diagnostics_channel` Channel this package uses, typed by message. */
export interface DiagnosticsChannel<Message> {
  readonly name: string | symbol
  readonly hasSubscribers: boolean
  publish(message: Message): void
}

function typed<Message>(name: string): DiagnosticsChannel<Message> {
  return channel(name) as DiagnosticsChannel<Message>
}

/** What went wrong, without anything secret: name, message, status and OAuth error code. */
export interface ErrorSummary {
  name: string
  message: string
  status?: number
  error?: string
}

export interface FetchStartMessage {
  key: string
  /** Why: `miss` (nobody had a token), `refresh-ahead` (background) or `renewal` (after a 401). */
  reason: 'miss' | 'refresh-ahead' | 'renewal'
}
export interface FetchSuccessMessage {
  key: string
  durationMs: number
  fingerprint: string
  expiresAt: number
  lifetimeMs: number
}
export interface FetchErrorMessage {
  key: string
  durationMs: number
  error: ErrorSummary
}
export interface CacheHitMessage {
  key: string
  fingerprint: string
}
export interface CacheMissMessage {
  key: string
  /** `empty`: nothing cached; `expired`: past expiresAt − skew; `unused`: sliding expiration. */
  reason: 'empty' | 'expired' | 'unused'
}
export interface RefreshAheadMessage {
  key: string
  fingerprint: string
  /** Ms the current token stays usable. */
  remainingMs: number
}
export interface RetryMessage {
  key: string
  origin: string
  /** The rejected token's fingerprint. */
  fingerprint: string
}
export interface InvalidateMessage {
  key: string
  /** The rejected token's fingerprint, when one was named. */
  fingerprint?: string
  evicted: boolean
}
export interface BackoffMessage {
  key: string
  delayMs: number
  failures: number
  error: ErrorSummary
}

/**
 * The message of every `tracing:undici-access-token:fetch:*` channel: one object per fetch,
 * completed as the fetch goes. `start` sees key, reason and grant; by `asyncEnd` it also has
 * `durationMs`, and `fingerprint`, `expiresAt` and `lifetimeMs` or `error`. Never a `result`:
 * that would be the token.
 */
export interface FetchTraceMessage {
  key: string
  reason: FetchStartMessage['reason']
  /** The OAuth grant (`grant_type`), when the token source is known to use one. */
  grant?: string
  /** Ms the fetch took, set when it settles. */
  durationMs?: number
  fingerprint?: string
  expiresAt?: number
  lifetimeMs?: number
  /** What the fetch rejected with: the `TokenRequestError` its callers get. */
  error?: Error
}

/** What a store call was for. */
export type StoreOperation = 'get' | 'set' | 'delete' | 'clear' | 'lock' | 'release'
export interface StoreErrorMessage {
  operation: StoreOperation
  /** The token's key; absent for `clear`. */
  key?: string
  /** `true`: slower than `storeTimeout` (counted as a miss), `error` then says so. */
  timedOut: boolean
  error: ErrorSummary
}

export function summarize(error: unknown): ErrorSummary {
  if (!(error instanceof Error)) return { name: 'Error', message: 'non-Error thrown' }
  const summary: ErrorSummary = { name: error.name, message: error.message }
  const { status, error: code } = error as { status?: unknown; error?: unknown }
  if (typeof status === 'number') summary.status = status
  if (typeof code === 'string') summary.error = code
  return summary
}

/** The grant each grant-built token source uses, for telemetry; custom sources have none. */
const grants = new WeakMap<object, string>()

/** Records that `fetchToken` sends `grantType` (`client_credentials`, …); returns it. */
export function nameGrant<F extends object>(grantType: string, fetchToken: F): F {
  grants.set(fetchToken, grantType)
  return fetchToken
}

/** The grant `fetchToken` sends, when it was named with `nameGrant`. */
export function grantOf(fetchToken: object): string | undefined {
  return grants.get(fetchToken)
}

/**
 * Runs a traced fetch inside a telemetry context of its own: the OpenTelemetry entry point
 * makes its span the active one there, which `start.runStores` cannot do for a context
 * manager it has no store of. Only while someone subscribes to `fetchTracing`.
 */
export type FetchScope = <T>(message: FetchTraceMessage, run: () => Promise<T>) => Promise<T>

const fetchScopes = new Set<FetchScope>()

/** Adds a scope for traced fetches; returns what removes it. */
export function addFetchScope(scope: FetchScope): () => void {
  fetchScopes.add(scope)
  return () => {
    fetchScopes.delete(scope)
  }
}

/**
 * The TracingChannel protocol around `run` (as `tracePromise`, but `message` never gets a
 * `result`, which would be the token): start (and the bound stores) → end, then asyncStart →
 * asyncEnd when it settles, after `error` if it rejects. Call only if `fetchTracing.hasSubscribers`.
 */
export function traceFetch<T>(message: FetchTraceMessage, run: () => Promise<T>): Promise<T> {
  const { start, end, asyncStart, asyncEnd, error } = fetchTracing
  return start.runStores(message, () => {
    let scoped = run
    for (const scope of fetchScopes) {
      const inner = scoped
      scoped = () => scope(message, inner)
    }
    const failed = (caught: unknown): void => {
      message.error = caught instanceof Error ? caught : new Error(String(caught))
      error.publish(message)
    }
    let settled: Promise<T>
    try {
      settled = scoped()
    } catch (caught) {
      failed(caught)
      throw caught
    } finally {
      end.publish(message)
    }
    return settled.then(
      (value) => {
        asyncStart.publish(message)
        asyncEnd.publish(message)
        return value
      },
      (caught: unknown) => {
        failed(caught)
        asyncStart.publish(message)
        asyncEnd.publish(message)
        throw caught
      },
    )
  })
}

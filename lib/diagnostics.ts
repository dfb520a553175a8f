import { channel } from 'node:diagnostics_channel'

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

/** Every channel's name, e.g. to subscribe to all of them. */
export const channelNames: readonly string[] = Object.values(channels).map((c) => String(c.name))

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

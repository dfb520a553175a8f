/**
 * Every name the OpenTelemetry entry point emits, in one place (docs/observability.md lists
 * them). Metric and attribute names follow OpenTelemetry's naming guidance: one namespace,
 * dot-separated, snake_case within a component; durations are histograms in seconds.
 */

/** The instrumentation scope: the meter's and the tracer's name. */
export const scopeName = 'undici-access-token'

export const metricNames = {
  /** Histogram, s: each token fetch, by outcome and reason. */
  fetchDuration: 'undici_access_token.fetch.duration',
  /** Counter, {request}: token requests started (fetches), by reason. */
  tokenRequests: 'undici_access_token.token_requests',
  /** Counter, {hit}: requests that found their token cached. */
  cacheHits: 'undici_access_token.cache.hits',
  /** Counter, {miss}: requests that found no usable token, by reason. */
  cacheMisses: 'undici_access_token.cache.misses',
  /** Counter, {retry}: 401s swallowed and the request sent again with a renewed token. */
  retries: 'undici_access_token.retries',
  /** Histogram, s: the wait imposed after a failed fetch; its count is the backoffs. */
  backoffDuration: 'undici_access_token.backoff.duration',
  /** Counter, {error}: store calls that failed or timed out (counted as misses). */
  storeErrors: 'undici_access_token.store.errors',
} as const

export const spanNames = {
  /** An INTERNAL span around each token fetch. */
  fetch: 'undici_access_token.fetch',
  /** An event on the active span: its request got a 401 and is sent again. */
  retry: 'undici_access_token.retry',
} as const

export const attributeNames = {
  /** The token's key; only with `includeKey` (it may name a tenant). */
  key: 'undici_access_token.key',
  /** Why a fetch started (`miss`, `refresh-ahead`, `renewal`) or why a lookup missed. */
  reason: 'undici_access_token.reason',
  /** `success` or `error`. */
  outcome: 'undici_access_token.outcome',
  /** The OAuth grant (`grant_type`), when known. */
  grant: 'undici_access_token.grant',
  /** The first 12 hex digits of the token's SHA-256: never the token. */
  fingerprint: 'undici_access_token.fingerprint',
  /** `get`, `set`, `delete`, `clear`, `lock`, `release`. */
  storeOperation: 'undici_access_token.store.operation',
  /** Semantic conventions: why it failed, low-cardinality. */
  errorType: 'error.type',
  httpStatus: 'http.response.status_code',
  serverAddress: 'server.address',
  serverPort: 'server.port',
} as const

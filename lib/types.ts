import type { DPoPSigner } from './dpop/signer.js'

/** What a token source returns (RFC 6749 §5.1, camelCased). */
export interface TokenResponse {
  /** The access token itself. */
  accessToken: string
  /** Default `'Bearer'`. */
  tokenType?: string
  /** Seconds until the token expires, as in RFC 6749 §5.1. */
  expiresIn?: number
  /** Absolute alternative to `expiresIn`: epoch ms or a Date. */
  expiresAt?: number | Date
  /** Anything else the endpoint returned (e.g. a second token), under its wire name. */
  [extra: string]: unknown
}

/** A token as the cache holds it: the response plus its resolved lifetime. */
export interface Token extends TokenResponse {
  tokenType: string
  /** Epoch ms when the token expires. */
  expiresAt: number
  /** Epoch ms when it was fetched (refresh-ahead and skew use it). */
  obtainedAt: number
  /** A DPoP-bound token (RFC 9449): the thumbprint of the key it is bound to. */
  dpopThumbprint?: string
}

/**
 * Gets a fresh token for `key`. Must honour `signal` (the fetch's own timeout). With DPoP
 * configured, `dpop` signs the proofs a token request carries (RFC 9449 §5).
 */
export type FetchToken = (context: {
  key: string
  signal: AbortSignal
  dpop?: DPoPSigner | undefined
}) => Promise<TokenResponse>

/**
 * Where tokens are kept. Async so that a shared store (Redis) fits the same shape.
 * The default is `memoryStore()`.
 */
export interface TokenStore {
  get(key: string): Promise<Token | undefined>
  /** Keep `token` under `key` for `ttlMs` (its remaining lifetime). */
  set(key: string, token: Token, ttlMs: number): Promise<void>
  /** Delete `key`, but only if the stored token is `ifAccessToken` when given. True if it deleted. */
  delete(key: string, ifAccessToken?: string): Promise<boolean>
  /** Take a lock for fetching `key`: a release function, or undefined if it is held elsewhere. */
  lock?(key: string, ttlMs: number): Promise<(() => Promise<void>) | undefined>
  /**
   * Ms the store keeps a lock whatever ttl `lock` is asked for (`redisStore`'s
   * `lockTtl`), when it has such a setting: a lock whose holder died lives that long,
   * so TokenCache waits for the holder's token about twice that long (a takeover), no more.
   */
  readonly lockTtl?: number | undefined
  /**
   * Resolves once the store can answer — `redisStore`: once its client's first
   * connection has settled, ready or failed — and at once when there is nothing to
   * wait for; never rejects. Before a fetch, TokenCache waits for it (at most its
   * `timeout`) so that a process starting with a cold cache reads the shared token.
   */
  ready?(): Promise<void>
  clear?(): Promise<void>
}

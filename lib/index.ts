export { TokenCache, type TokenCacheOptions } from './cache/token-cache.js'
export {
  type BackoffMessage,
  type CacheHitMessage,
  type CacheMissMessage,
  channelNames,
  type ErrorSummary,
  type FetchErrorMessage,
  type FetchStartMessage,
  type FetchSuccessMessage,
  type FetchTraceMessage,
  type InvalidateMessage,
  type RefreshAheadMessage,
  type RetryMessage,
  type StoreErrorMessage,
  type StoreOperation,
} from './diagnostics.js'
export type { DPoPOptions, DPoPSigner } from './dpop/signer.js'
export {
  AccessTokenError,
  AccessTokenErrorCode,
  TokenRequestError,
  type TokenRequestErrorDetails,
} from './errors.js'
export type { HeadersForToken } from './handler/headers.js'
export { type AccessTokenOptions, accessToken } from './interceptor.js'
export {
  type ClientAuth,
  type ClientAuthRequest,
  clientSecretBasic,
  clientSecretPost,
  tlsClientAuth,
} from './oauth/client-auth.js'
export { type ClientCredentialsOptions, clientCredentials } from './oauth/client-credentials.js'
export type { GrantOptions, GrantValue } from './oauth/grant.js'
export { type JwtBearerOptions, jwtBearer } from './oauth/jwt-bearer.js'
export {
  type AssertionOptions,
  type ClientAssertionRequest,
  type ClientSecretJwtOptions,
  clientAssertion,
  clientSecretJwt,
  federatedTokenFile,
  type PrivateKeyJwtOptions,
  privateKeyJwt,
} from './oauth/jwt-client-auth.js'
export { type TokenExchangeOptions, tokenExchange } from './oauth/token-exchange.js'
export type { Origins } from './origins.js'
export { type MemoryStoreOptions, memoryStore } from './stores/memory.js'
export type { FetchToken, Token, TokenResponse, TokenStore } from './types.js'

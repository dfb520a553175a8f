export { type ClientCredentialsOptions, clientCredentials } from './client-credentials.js'
export {
  AccessTokenError,
  AccessTokenErrorCode,
  TokenRequestError,
  type TokenRequestErrorDetails,
} from './errors.js'
export type { HeadersForToken } from './headers.js'
export { type AccessTokenOptions, accessToken } from './interceptor.js'
export type { Origins } from './origins.js'
export { type MemoryStoreOptions, memoryStore } from './stores/memory.js'
export { TokenCache, type TokenCacheOptions } from './token-cache.js'
export type { FetchToken, Token, TokenResponse, TokenStore } from './types.js'

import { nameGrant } from '../diagnostics.js'
import type { FetchToken } from '../types.js'
import { type GrantOptions, grantRequest } from './grant.js'

/** Options of `clientCredentials()`: the RFC 6749 §4.4 client credentials grant. */
export interface ClientCredentialsOptions extends GrantOptions {
  /**
   * How `clientSecret` is sent (RFC 6749 §2.3.1); default `client_secret_basic`. Only
   * with `clientSecret`: a `clientAuth` says how the client authenticates itself.
   */
  authMethod?: 'client_secret_basic' | 'client_secret_post'
}

/**
 * A `FetchToken` for the OAuth 2 client credentials grant (RFC 6749 §4.4).
 * Redirects are never followed; answers are read up to 1 MiB.
 */
export function clientCredentials(options: ClientCredentialsOptions): FetchToken {
  const send = grantRequest(options, {
    grantType: 'client_credentials',
    name: 'clientCredentials',
    authMethod: options?.authMethod,
  })
  // Named for telemetry: the fetch trace's `grant`.
  return nameGrant('client_credentials', (context) => send([], context))
}

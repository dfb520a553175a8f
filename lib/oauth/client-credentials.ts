import type { Dispatcher } from 'undici'
import type { FetchToken } from '../types.js'
import { type ClientAuth, clientSecretBasic, clientSecretPost } from './client-auth.js'
import { tokenRequest } from './token-request.js'

/** Options of `clientCredentials()`: the RFC 6749 §4.4 client credentials grant. */
export interface ClientCredentialsOptions {
  /** The token endpoint. */
  tokenUrl: string | URL
  clientId: string
  clientSecret: string
  /** One scope, or several (sent space-separated, RFC 6749 §3.3). */
  scope?: string | string[]
  /** The API the token is for, as many providers (Auth0, Okta) name it. */
  audience?: string
  /** Resource indicators (RFC 8707), sent once each. */
  resource?: string | string[]
  /** How the client authenticates (RFC 6749 §2.3.1); default `client_secret_basic`. */
  authMethod?: 'client_secret_basic' | 'client_secret_post'
  /** More form parameters for the token request. */
  extraParams?: Record<string, string>
  /** Send the token request through this undici dispatcher; default: global `fetch`. */
  dispatcher?: Dispatcher
}

/**
 * A `FetchToken` for the OAuth 2 client credentials grant (RFC 6749 §4.4).
 * Redirects are never followed; answers are read up to 1 MiB.
 */
export function clientCredentials(options: ClientCredentialsOptions): FetchToken {
  if (typeof options.clientId !== 'string' || options.clientId.length === 0) {
    throw new TypeError('clientCredentials needs a clientId')
  }
  if (typeof options.clientSecret !== 'string' || options.clientSecret.length === 0) {
    throw new TypeError('clientCredentials needs a clientSecret')
  }
  const send = tokenRequest({
    tokenUrl: options.tokenUrl,
    clientId: options.clientId,
    clientAuth: secretAuth(options.clientSecret, options.authMethod),
    dispatcher: options.dispatcher,
  })
  const form = new URLSearchParams({ grant_type: 'client_credentials' })
  const scope = Array.isArray(options.scope) ? options.scope.join(' ') : options.scope
  if (scope) form.set('scope', scope)
  if (options.audience) form.set('audience', options.audience)
  for (const resource of [options.resource ?? []].flat()) form.append('resource', resource)
  for (const [name, value] of Object.entries(options.extraParams ?? {})) form.set(name, value)
  return ({ signal }) => send(form, signal)
}

function secretAuth(secret: string, method: ClientCredentialsOptions['authMethod']): ClientAuth {
  switch (method ?? 'client_secret_basic') {
    case 'client_secret_basic':
      return clientSecretBasic(secret)
    case 'client_secret_post':
      return clientSecretPost(secret)
    default:
      throw new TypeError(`authMethod must be client_secret_basic or client_secret_post`)
  }
}

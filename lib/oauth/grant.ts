import type { Dispatcher } from 'undici'
import { TokenRequestError } from '../errors.js'
import type { TokenResponse } from '../types.js'
import { type ClientAuth, clientSecretBasic, clientSecretPost } from './client-auth.js'
import { discoveredEndpoint } from './discovery.js'
import { httpUrl } from './http.js'
import { type RequestContext, type TokenEndpointSource, tokenRequest } from './token-request.js'

/** Options every grant takes: where the token endpoint is, who the client is, what to ask for. */
export interface GrantOptions {
  /**
   * The token endpoint. At least one of `tokenUrl` and `issuer`: with both, `tokenUrl` is
   * used and `issuer` only names the issuer (for `audience: 'issuer'` assertions).
   */
  tokenUrl?: string | URL
  /**
   * The authorization server's issuer identifier, exactly as its metadata spells it
   * (a URL object counts as its `href`, which ends in "/" for a bare origin). Without
   * `tokenUrl`, the token endpoint is discovered from it (RFC 8414, then OpenID Connect
   * Discovery): on the first fetch, once, through `dispatcher`.
   */
  issuer?: string | URL
  clientId?: string
  /** Shorthand for `clientAuth: clientSecretBasic(clientSecret)`. */
  clientSecret?: string
  /** How the client authenticates (RFC 6749 §2.3); give this or `clientSecret`. */
  clientAuth?: ClientAuth
  /** One scope, or several (sent space-separated, RFC 6749 §3.3). */
  scope?: string | string[]
  /** The API the token is for, as many providers (Auth0, Okta) and RFC 8693 name it. */
  audience?: string
  /** Resource indicators (RFC 8707), sent once each. */
  resource?: string | string[]
  /** More form parameters for the token request (set last: they win). */
  extraParams?: Record<string, string>
  /** Send token (and discovery) requests through this undici dispatcher; default: global `fetch`. */
  dispatcher?: Dispatcher
}

/** A value a grant sends, or a function that gets it afresh for every token fetch. */
export type GrantValue = string | ((context: { signal: AbortSignal }) => string | Promise<string>)

/** What a grant adds to the shared option handling. */
export interface GrantSettings {
  /** `grant_type`. */
  readonly grantType: string
  /** The grant's function name, for messages. */
  readonly name: string
  /** clientCredentials' `authMethod`, which goes with `clientSecret`. */
  readonly authMethod?: string | undefined
  /** No client at all is allowed: the grant itself authenticates (RFC 7523 §2.1). */
  readonly clientOptional?: boolean
}

/**
 * Sends one request of a grant: `grant_type`, the grant's `params`, then `scope`,
 * `audience`, `resource` and `extraParams`. `secrets`: values among `params` that are
 * redacted from every error.
 */
export type GrantRequest = (
  params: ReadonlyArray<readonly [string, string]>,
  context: RequestContext,
  secrets?: readonly string[],
) => Promise<TokenResponse>

/**
 * The option handling every grant shares, in one place: checks `options` (a TypeError
 * now rather than a failed fetch later), picks the client authentication and the token
 * endpoint (fixed, or discovered from `issuer`), and returns the grant's request.
 */
export function grantRequest(options: GrantOptions, settings: GrantSettings): GrantRequest {
  const { name } = settings
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${name} needs options`)
  }
  const clientAuth = clientAuthOf(options, settings)
  const send = tokenRequest({
    endpoint: endpointOf(options, name, clientAuth?.method),
    clientId: options.clientId,
    clientAuth,
    dispatcher: options.dispatcher,
  })
  const common = commonParams(options)
  const extra = Object.entries(options.extraParams ?? {})
  return async (params, context, secrets) => {
    const form = new URLSearchParams({ grant_type: settings.grantType })
    for (const [param, value] of params) form.append(param, value)
    for (const [param, value] of common) form.append(param, value)
    for (const [param, value] of extra) form.set(param, value)
    return send(form, context, secrets)
  }
}

/**
 * Checks a GrantValue now (a TypeError rather than a failed fetch later) and returns
 * what gets its value for one fetch: a non-empty string, or a TokenRequestError.
 */
export function grantValue(
  value: GrantValue,
  what: string,
): (signal: AbortSignal) => Promise<string> {
  if (typeof value !== 'function' && (typeof value !== 'string' || value.length === 0)) {
    throw new TypeError(`${what} must be a non-empty string or a function that returns one`)
  }
  return async (signal) => {
    let result: unknown
    try {
      result = typeof value === 'function' ? await value({ signal }) : value
    } catch (error) {
      if (signal.aborted) throw signal.reason
      throw new TokenRequestError(`${what}() failed`, { cause: error })
    }
    if (typeof result !== 'string' || result.length === 0) {
      throw new TokenRequestError(`${what}() returned no value (it must be a non-empty string)`)
    }
    return result
  }
}

function clientAuthOf(options: GrantOptions, settings: GrantSettings): ClientAuth | undefined {
  const { name, authMethod } = settings
  const { clientId, clientSecret, clientAuth } = options
  if (clientSecret !== undefined && clientAuth !== undefined) {
    throw new TypeError(`${name} takes a clientSecret or a clientAuth, not both`)
  }
  if (authMethod !== undefined && clientAuth !== undefined) {
    throw new TypeError(
      `${name}: authMethod goes with clientSecret; a clientAuth already says how the client authenticates`,
    )
  }
  const noClient = clientId === undefined && clientSecret === undefined && clientAuth === undefined
  if (settings.clientOptional && noClient) return undefined
  if (typeof clientId !== 'string' || clientId.length === 0) {
    throw new TypeError(`${name} needs a clientId`)
  }
  if (clientAuth !== undefined) {
    if (typeof clientAuth !== 'function') {
      throw new TypeError(`${name}: clientAuth must be a ClientAuth function`)
    }
    return clientAuth
  }
  if (typeof clientSecret !== 'string' || clientSecret.length === 0) {
    // Public clients (client_id only) are not supported: a machine client authenticates.
    throw new TypeError(`${name} needs a clientSecret or a clientAuth`)
  }
  switch (authMethod ?? 'client_secret_basic') {
    case 'client_secret_basic':
      return clientSecretBasic(clientSecret)
    case 'client_secret_post':
      return clientSecretPost(clientSecret)
    default:
      throw new TypeError('authMethod must be client_secret_basic or client_secret_post')
  }
}

function endpointOf(
  options: GrantOptions,
  name: string,
  authMethod: string | undefined,
): TokenEndpointSource {
  const { tokenUrl, dispatcher } = options
  const issuer = options.issuer === undefined ? undefined : issuerOf(options.issuer, name)
  if (tokenUrl === undefined || tokenUrl === null) {
    if (issuer === undefined) throw new TypeError(`${name} needs a tokenUrl or an issuer`)
    return discoveredEndpoint({ issuer, dispatcher, authMethod })
  }
  const url = httpUrl(tokenUrl, 'tokenUrl')
  if (typeof url === 'string') throw new TypeError(url)
  return { url, issuer }
}

/**
 * The issuer identifier as configured (a URL object as its href): RFC 8414 §2, an
 * http(s) URL without query or fragment. Metadata must name it exactly (§3.3).
 */
function issuerOf(value: string | URL, name: string): string {
  const url = httpUrl(value, 'issuer')
  if (typeof url === 'string') throw new TypeError(`${name}: ${url}`)
  if (url.search !== '' || url.hash !== '' || /[?#]/.test(String(value))) {
    throw new TypeError(`${name}: issuer must not have a query or fragment (RFC 8414 §2)`)
  }
  return typeof value === 'string' ? value : url.href
}

/** scope, audience and resource, as every grant sends them. */
function commonParams(options: GrantOptions): Array<[string, string]> {
  const params: Array<[string, string]> = []
  const scope = Array.isArray(options.scope) ? options.scope.join(' ') : options.scope
  if (scope) params.push(['scope', scope])
  if (options.audience) params.push(['audience', options.audience])
  for (const resource of [options.resource ?? []].flat()) params.push(['resource', resource])
  return params
}

import type { Dispatcher } from 'undici'
import { TokenRequestError } from '../errors.js'
import { httpUrl, type RawResponse, send } from './http.js'
import type { TokenEndpoint } from './token-request.js'

/** What discovery needs to know. */
export interface DiscoveryOptions {
  /** The issuer identifier, exactly as configured. */
  readonly issuer: string
  readonly dispatcher?: Dispatcher | undefined
  /** The client authentication's `token_endpoint_auth_method`, when it names one. */
  readonly authMethod?: string | undefined
}

/** RFC 8705 §2: the methods that authenticate with the TLS client certificate. */
const tlsMethods = new Set(['tls_client_auth', 'self_signed_tls_client_auth'])

/**
 * The token endpoint of `issuer`, from its metadata: fetched on the first call (not
 * before), once however many calls wait for it (each caller's signal detaches only that
 * caller; when no caller is left, the request is aborted), and kept for the life of
 * the process — shared by every grant naming the same issuer through the same
 * dispatcher. A failure is shared by every caller that waited for it and is not kept:
 * the next call tries again (TokenCache's backoff spaces those calls, as the failure is
 * a TokenRequestError). What the endpoint is for this grant (the mTLS alias, the auth
 * method check) is derived from the shared document per grant.
 */
export function discoveredEndpoint(
  options: DiscoveryOptions,
): (signal: AbortSignal) => TokenEndpoint | Promise<TokenEndpoint> {
  const discovery = Discovery.of(options.issuer, options.dispatcher)
  let endpoint: TokenEndpoint | undefined
  const derive = (document: MetadataDocument): TokenEndpoint => {
    try {
      endpoint = endpointOf(document, options)
      return endpoint
    } catch (error) {
      // Not kept, as any failure: the next call fetches the document again (it may be fixed).
      discovery.drop(document)
      throw error
    }
  }
  return (signal) => {
    if (endpoint !== undefined) return endpoint
    const document = discovery.get(signal)
    return document instanceof Promise ? document.then(derive) : derive(document)
  }
}

/**
 * Where an issuer's metadata may be, in the order tried: RFC 8414 §3.1 (the well-known
 * segment between host and path, the path's terminating "/" removed), then OpenID Connect
 * Discovery 1.0 §4 (appended to the issuer, its terminating "/" removed).
 */
export function metadataUrls(issuer: string): URL[] {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/$/, '')
  const rfc8414 = new URL(url.origin)
  rfc8414.pathname = `/.well-known/oauth-authorization-server${path}`
  const oidc = new URL(url.origin)
  oidc.pathname = `${path}/.well-known/openid-configuration`
  return [rfc8414, oidc]
}

interface Flight {
  readonly promise: Promise<MetadataDocument>
  readonly controller: AbortController
  waiters: number
}

/** A metadata document whose issuer is the configured one, and where it was found. */
interface MetadataDocument {
  readonly metadata: Record<string, unknown>
  readonly where: string
}

/** Stands for "no dispatcher" (global fetch) as a WeakMap key. */
const globalFetch = {}

/** One issuer's metadata, fetched once for the process per dispatcher it is fetched through. */
class Discovery {
  /**
   * Per dispatcher (a WeakMap: a dispatcher let go takes its entries with it), per
   * issuer. Issuers come from configuration, not from requests: the maps stay small.
   */
  static readonly #all = new WeakMap<object, Map<string, Discovery>>()

  static of(issuer: string, dispatcher: Dispatcher | undefined): Discovery {
    const scope = dispatcher ?? globalFetch
    let byIssuer = Discovery.#all.get(scope)
    if (byIssuer === undefined) {
      byIssuer = new Map()
      Discovery.#all.set(scope, byIssuer)
    }
    let discovery = byIssuer.get(issuer)
    if (discovery === undefined) {
      discovery = new Discovery(issuer, dispatcher)
      byIssuer.set(issuer, discovery)
    }
    return discovery
  }

  readonly #issuer: string
  readonly #dispatcher: Dispatcher | undefined
  #document: MetadataDocument | undefined
  #flight: Flight | undefined

  private constructor(issuer: string, dispatcher: Dispatcher | undefined) {
    this.#issuer = issuer
    this.#dispatcher = dispatcher
  }

  /** `document` did not serve: the next call fetches anew. */
  drop(document: MetadataDocument): void {
    if (this.#document === document) this.#document = undefined
  }

  get(signal: AbortSignal): MetadataDocument | Promise<MetadataDocument> {
    if (this.#document !== undefined) return this.#document
    if (signal.aborted) return Promise.reject(signal.reason)
    return this.#wait(this.#flight ?? this.#start(), signal)
  }

  #start(): Flight {
    const controller = new AbortController()
    const promise = this.#discover(controller.signal).then(
      (document) => {
        this.#document = document
        if (this.#flight === flight) this.#flight = undefined
        return document
      },
      (error: unknown) => {
        if (this.#flight === flight) this.#flight = undefined
        throw error
      },
    )
    promise.catch(() => {})
    const flight: Flight = { promise, controller, waiters: 0 }
    this.#flight = flight
    return flight
  }

  async #wait(flight: Flight, signal: AbortSignal): Promise<MetadataDocument> {
    flight.waiters++
    let onAbort = (): void => {}
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason)
    })
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      return await Promise.race([flight.promise, aborted])
    } finally {
      signal.removeEventListener('abort', onAbort)
      flight.waiters--
      // The last caller gave up: nobody wants this answer, so it is not awaited further.
      if (flight.waiters === 0 && this.#flight === flight && this.#document === undefined) {
        this.#flight = undefined
        flight.controller.abort(signal.reason)
      }
    }
  }

  async #discover(signal: AbortSignal): Promise<MetadataDocument> {
    const issuer = this.#issuer
    const dispatcher = this.#dispatcher
    const misses: string[] = []
    let status: number | undefined
    for (const url of metadataUrls(issuer)) {
      const where = `${url.origin}${url.pathname}`
      const raw = await send(
        { url, name: `Metadata document ${where}`, expected: 'a metadata document' },
        { method: 'GET', headers: { accept: 'application/json' } },
        dispatcher,
        signal,
      )
      const metadata = metadataOf(raw)
      // Not there (404, a redirect — never followed —, an HTML page …): the next location.
      if (metadata === undefined) {
        misses.push(`${where} answered ${raw.status}${raw.status < 300 ? ' without metadata' : ''}`)
        status = raw.status
        continue
      }
      // RFC 8414 §3.3 (OIDC Discovery §4.3): identical, or the metadata MUST NOT be used.
      if (metadata.issuer !== issuer) {
        throw new TokenRequestError(
          `Metadata document ${where} names issuer ${quote(metadata.issuer)}, not the configured ${quote(issuer)}; it must be identical (RFC 8414 §3.3), so it is not used`,
        )
      }
      return { metadata, where }
    }
    throw new TokenRequestError(
      `No authorization server metadata found for issuer ${issuer}: ${misses.join('; ')}`,
      { status },
    )
  }
}

/** The token endpoint the metadata names for this grant, checked against its configuration. */
function endpointOf(
  { metadata, where }: MetadataDocument,
  options: DiscoveryOptions,
): TokenEndpoint {
  const { issuer, authMethod } = options
  // RFC 8705 §5: a client using mTLS uses the alias when there is one.
  const aliases = metadata.mtls_endpoint_aliases
  const alias =
    authMethod !== undefined && tlsMethods.has(authMethod) && isObject(aliases)
      ? aliases.token_endpoint
      : undefined
  const name = alias === undefined ? 'token_endpoint' : 'mtls_endpoint_aliases.token_endpoint'
  const value = alias ?? metadata.token_endpoint
  if (value === undefined) {
    throw new TokenRequestError(`Metadata document ${where} names no token_endpoint`)
  }
  const url = httpUrl(value, name)
  if (typeof url === 'string') throw new TokenRequestError(`Metadata document ${where}: ${url}`)
  if (url.protocol === 'http:' && new URL(issuer).protocol === 'https:') {
    // The credentials would travel in clear text, whatever the issuer's TLS protects.
    throw new TokenRequestError(
      `Metadata document ${where} names an http: ${name} for an https: issuer; not used`,
    )
  }
  // Checked only when the server lists its methods: RFC 8414 §2 makes an absent list mean
  // client_secret_basic alone, but servers leave it out while taking more, and the token
  // endpoint answers invalid_client to a method it does not take anyway.
  // The two RFC 8705 methods are the same on the wire (§2.1, §2.2); which one applies
  // is the client's registration, so either in the list will do for either.
  const supported = metadata.token_endpoint_auth_methods_supported
  const accepted =
    authMethod !== undefined && tlsMethods.has(authMethod) ? tlsMethods : [authMethod]
  if (
    authMethod !== undefined &&
    Array.isArray(supported) &&
    ![...accepted].some((method) => supported.includes(method))
  ) {
    const listed = supported.filter((method) => typeof method === 'string').join(', ')
    throw new TokenRequestError(
      `Authorization server ${issuer} does not support token endpoint auth method ${authMethod} (its token_endpoint_auth_methods_supported: ${listed.slice(0, 300)}); configure a client authentication it supports`,
    )
  }
  return { url, issuer }
}

/** A metadata document: a 2xx JSON object with an `issuer` (RFC 8414 §2: required). */
function metadataOf(raw: RawResponse): Record<string, unknown> | undefined {
  if (raw.status < 200 || raw.status >= 300) return undefined
  let json: unknown
  try {
    json = JSON.parse(raw.text)
  } catch {
    return undefined
  }
  return isObject(json) && typeof json.issuer === 'string' ? json : undefined
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A value from the metadata, quoted and capped for a message. */
function quote(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 200)) : String(value)
}

/**
 * A real authorization server — oidc-provider, a certified OpenID provider — and
 * a protected API that checks its access tokens the way a resource server does:
 * JWT access tokens with jose against the provider's JWKS (clock tolerance 0),
 * opaque ones through the provider's introspection endpoint (RFC 7662). Both
 * listen on 127.0.0.1 with ephemeral ports; `close()` stops both.
 *
 * Keys and client secrets are generated per environment; every secret and every
 * issued token is registered with the suite-wide secret scan.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRemoteJWKSet, type JWTPayload, errors as joseErrors, jwtVerify } from 'jose'
import Provider, { type AdapterPayload, errors as oidcErrors } from 'oidc-provider'
import { request } from 'undici'
import { registerSecret } from '../helpers/secret-registry.js'
import { startServer, type TestServer } from '../helpers/servers.js'

export interface Client {
  readonly clientId: string
  readonly clientSecret: string
  readonly authMethod: 'client_secret_basic' | 'client_secret_post'
  /** The client secret in every form it travels in (as is, form-encoded, in the Basic credential). */
  readonly secretForms: string[]
}

/** One answer of the provider's token endpoint. */
export interface TokenGrant {
  clientId: string | undefined
  status: number
  /** OAuth error code, for an error answer. */
  error?: string
  accessToken?: string
}

export type Outcome =
  /** Valid: the API answered 200. */
  | 'ok'
  /** No bearer token: 401. */
  | 'missing'
  /** A JWT whose `exp` has passed (jose, clock tolerance 0): 401 invalid_token. */
  | 'expired'
  /** An opaque token that introspection says is not active (revoked or expired): 401 invalid_token. */
  | 'inactive'
  /** Anything else wrong with the token: 401 invalid_token. */
  | 'invalid'

export interface ApiHit {
  path: string
  kind: 'none' | 'jwt' | 'opaque'
  outcome: Outcome
  token: string | undefined
  /** JWT claims, or the introspection answer, when the token was checked. */
  claims: Record<string, unknown> | undefined
}

export interface Api extends TestServer {
  readonly hits: ApiHit[]
  /** JWTs that arrived after their `exp` (jose, clockTolerance 0). */
  readonly expiredArrivals: number
}

export interface OidcEnvironment {
  /** `http://127.0.0.1:<port>` */
  readonly issuer: string
  readonly tokenUrl: string
  readonly introspectionUrl: string
  readonly revocationUrl: string
  readonly jwksUri: string
  /** A `client_secret_basic` client allowed scopes `read write`. */
  readonly basicClient: Client
  /** A `client_secret_post` client allowed scopes `read write`. */
  readonly postClient: Client
  /**
   * Resource indicators (RFC 8707) the provider knows: each gets a JWT access
   * token (ES256, audience = the indicator, scopes `read write`).
   * `reports` lives 300 s, `ticks` `shortTokenTtl` seconds.
   */
  readonly resources: { readonly reports: string; readonly ticks: string }
  readonly api: Api
  /** Every token endpoint answer, in order. */
  readonly grants: TokenGrant[]
  /** POST requests that reached the token endpoint. */
  readonly tokenRequests: number
  /** Errors oidc-provider reported as `server_error`: a configuration problem, should stay empty. */
  readonly serverErrors: Error[]
  /** Revokes a token at the revocation endpoint (RFC 7009), as the client it was issued to. */
  revoke(token: string, client: Client): Promise<void>
  /** Asks the introspection endpoint (RFC 7662) about a token, as the API. */
  introspect(token: string): Promise<Record<string, unknown>>
  close(): Promise<void>
}

export interface OidcEnvironmentOptions {
  /** Seconds the `ticks` resource's tokens live; default 3. */
  shortTokenTtl?: number
}

/** application/x-www-form-urlencoded, as RFC 6749 §2.3.1 wants id and secret inside Basic. */
export function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2)
}

export function basicAuthorization(clientId: string, clientSecret: string): string {
  const credential = `${formEncode(clientId)}:${formEncode(clientSecret)}`
  return `Basic ${Buffer.from(credential).toString('base64')}`
}

/**
 * A fresh client secret with the characters that form encoding changes (space,
 * ':', '+', '/', '=', '&', '%'), so a client that skips the RFC 6749 §2.3.1
 * encoding step fails to authenticate. Printable ASCII only: oidc-provider
 * refuses a client_secret outside VSCHAR (RFC 6749 Appendix A).
 */
export function newSecret(): string {
  return `${randomBytes(18).toString('base64url')} :+/=&%${randomBytes(18).toString('base64url')}`
}

function newClient(clientId: string, authMethod: Client['authMethod']): Client {
  return clientWith(clientId, newSecret(), authMethod)
}

/**
 * A client as the token requests will present it — e.g. a registered one with a
 * wrong secret — whose secret forms are registered with the suite-wide scan.
 */
export function clientWith(
  clientId: string,
  clientSecret: string,
  authMethod: Client['authMethod'],
): Client {
  const basic = basicAuthorization(clientId, clientSecret)
  const secretForms = [
    clientSecret,
    formEncode(clientSecret),
    encodeURIComponent(clientSecret),
    basic.slice('Basic '.length),
  ]
  for (const form of secretForms) registerSecret(form)
  registerSecret(basic)
  return { clientId, clientSecret, authMethod, secretForms }
}

/**
 * The provider's signing key, made now and never stored: one P-256 key (ES256
 * signs the JWT access tokens and, per the clients' metadata, anything else).
 */
export function signingKeys(): object[] {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    format: 'jwk',
  })
  return [{ ...ec, kid: `ec-${randomBytes(4).toString('hex')}`, alg: 'ES256', use: 'sig' }]
}

/**
 * oidc-provider's storage, one per environment (its built-in memory adapter is
 * process-wide and prints a warning). Entries expire at their deadline.
 */
export function mapAdapter(): (model: string) => object {
  const entries = new Map<string, { payload: AdapterPayload; expiresAt: number }>()
  const read = (key: string): AdapterPayload | undefined => {
    const entry = entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= Date.now()) {
      entries.delete(key)
      return undefined
    }
    return entry.payload
  }
  return (model) => ({
    async upsert(id: string, payload: AdapterPayload, expiresIn: number | undefined) {
      const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity
      entries.set(`${model}:${id}`, { payload, expiresAt })
    },
    async find(id: string) {
      return read(`${model}:${id}`)
    },
    async findByUid(uid: string) {
      for (const [key] of entries) {
        const payload = key.startsWith(`${model}:`) ? read(key) : undefined
        if (payload?.uid === uid) return payload
      }
      return undefined
    },
    async findByUserCode(userCode: string) {
      for (const [key] of entries) {
        const payload = key.startsWith(`${model}:`) ? read(key) : undefined
        if (payload?.userCode === userCode) return payload
      }
      return undefined
    },
    async consume(id: string) {
      const payload = read(`${model}:${id}`)
      if (payload) payload.consumed = Math.floor(Date.now() / 1000)
    },
    async destroy(id: string) {
      entries.delete(`${model}:${id}`)
    },
    async revokeByGrantId(grantId: string) {
      for (const [key, entry] of entries) if (entry.payload.grantId === grantId) entries.delete(key)
    },
  })
}

export async function postForm(
  url: string,
  authorization: string | undefined,
  form: Record<string, string>,
): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const response = await request(url, {
    method: 'POST',
    headers: {
      ...(authorization === undefined ? {} : { authorization }),
      accept: 'application/json',
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams(form).toString(),
  })
  const text = await response.body.text()
  let json: Record<string, unknown> | undefined
  try {
    json = text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>)
  } catch {
    json = undefined
  }
  return { status: response.statusCode, json }
}

/** Listens on 127.0.0.1, an ephemeral port, keeping connections longer than any client: the port. */
export async function listen(server: Server): Promise<number> {
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

/** Closes a server and the connections clients keep open to it. */
export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

/** A provider's HTTP server, listening before the provider exists (its issuer needs the port). */
export interface ProviderServer {
  /** `http://127.0.0.1:<port>` */
  readonly issuer: string
  readonly tokenUrl: string
  readonly introspectionUrl: string
  readonly revocationUrl: string
  /** POST requests that reached the token endpoint. */
  readonly tokenRequests: number
  /** Hands the requests to `provider`; every Authorization header is registered with the secret scan. */
  serve(provider: InstanceType<typeof Provider>): void
  close(): Promise<void>
}

export async function startProviderServer(): Promise<ProviderServer> {
  const server = createServer()
  const issuer = `http://127.0.0.1:${await listen(server)}`
  let tokenRequests = 0
  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    introspectionUrl: `${issuer}/token/introspection`,
    revocationUrl: `${issuer}/token/revocation`,
    get tokenRequests() {
      return tokenRequests
    },
    serve(provider) {
      const callback = provider.callback()
      server.on('request', (req, res) => {
        registerSecret(req.headers.authorization)
        if (req.method === 'POST' && new URL(req.url ?? '/', issuer).pathname === '/token')
          tokenRequests++
        callback(req, res)
      })
    },
    close: () => closeServer(server),
  }
}

/**
 * A client_credentials client's metadata (`grantTypes` for another grant, or none for
 * the API's own client), allowed scopes `read write`.
 */
export function clientMetadata(
  clientId: string,
  metadata: Record<string, unknown>,
  grantTypes = ['client_credentials'],
) {
  return {
    client_id: clientId,
    grant_types: grantTypes,
    redirect_uris: [],
    response_types: [],
    scope: 'read write',
    // The default, RS256, would need an RSA key in the provider's keystore (slow to
    // generate); nothing here signs ID tokens.
    id_token_signed_response_alg: 'ES256',
    ...metadata,
  }
}

/**
 * The provider configuration every environment shares: a fresh signing key and store,
 * no interactions, the client_credentials grant, tokens living as long as their resource
 * server says (600 s without one), and introspection for the API's client only. Each
 * environment spreads it and adds its clients and features.
 */
export function baseConfiguration(apiClientId: string) {
  return {
    jwks: { keys: signingKeys() },
    adapter: mapAdapter(),
    // Set every helper oidc-provider would otherwise print a NOTICE for.
    clientBasedCORS: () => false,
    ttl: {
      ClientCredentials: (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) =>
        token.resourceServer?.accessTokenTTL ?? 600,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Only the API may introspect.
        allowedPolicy: (_ctx: unknown, client: { clientId: string }) =>
          client.clientId === apiClientId,
      },
    },
  }
}

/** The revocation endpoint (RFC 7009), where a client may revoke its own tokens only. */
export const ownTokenRevocation = {
  enabled: true,
  allowedPolicy: (_ctx: unknown, client: { clientId: string }, token: { clientId: string }) =>
    token.clientId === client.clientId,
}

/** Introspection (RFC 7662) as the API: the answer, or a throw for anything but a 200. */
export function introspector(
  introspectionUrl: string,
  apiAuthorization: string,
  extraForm: Record<string, string> = {},
): (token: string) => Promise<Record<string, unknown>> {
  return async (token) => {
    const answer = await postForm(introspectionUrl, apiAuthorization, { token, ...extraForm })
    if (answer.status !== 200 || answer.json === undefined) {
      throw new Error(`introspection answered ${answer.status}`)
    }
    return answer.json
  }
}

/** Revokes a token (RFC 7009) as the client it was issued to, authenticated its own way. */
export async function revokeAs(
  revocationUrl: string,
  token: string,
  client: Client,
): Promise<void> {
  const form: Record<string, string> = { token, token_type_hint: 'access_token' }
  let authorization: string | undefined = basicAuthorization(client.clientId, client.clientSecret)
  if (client.authMethod === 'client_secret_post') {
    authorization = undefined
    form.client_id = client.clientId
    form.client_secret = client.clientSecret
  }
  const answer = await postForm(revocationUrl, authorization, form)
  if (answer.status !== 200) {
    throw new Error(`revocation answered ${answer.status} ${String(answer.json?.error)}`)
  }
}

function bearerToken(req: IncomingMessage): string | undefined {
  const match = /^Bearer +(\S+)$/i.exec(req.headers.authorization ?? '')
  return match?.[1]
}

/** Records every token request's outcome (and registers issued tokens with the secret scan). */
export function recordGrants(
  provider: InstanceType<typeof import('oidc-provider').default>,
  grants: TokenGrant[],
  serverErrors: Error[],
): void {
  provider.on('grant.success', (ctx) => {
    const body = ctx.body as { access_token?: string }
    registerSecret(body.access_token)
    grants.push({
      clientId: ctx.oidc?.client?.clientId,
      status: 200,
      ...(body.access_token === undefined ? {} : { accessToken: body.access_token }),
    })
  })
  provider.on('grant.error', (ctx, error) => {
    grants.push({
      clientId: ctx.oidc?.client?.clientId,
      status: ctx.status,
      ...(error.error === undefined ? {} : { error: error.error }),
    })
  })
  provider.on('server_error', (_ctx, error) => {
    serverErrors.push(error)
  })
}

/** Starts oidc-provider and the protected API on 127.0.0.1. */
export async function startOidcEnvironment(
  options: OidcEnvironmentOptions = {},
): Promise<OidcEnvironment> {
  const shortTokenTtl = options.shortTokenTtl ?? 3
  const basicClient = newClient('svc-basic', 'client_secret_basic')
  const postClient = newClient('svc-post', 'client_secret_post')
  // The API authenticates to the introspection endpoint as a client of its own.
  const apiClient = newClient('reports-api', 'client_secret_basic')
  const apiAuthorization = basicAuthorization(apiClient.clientId, apiClient.clientSecret)

  const grants: TokenGrant[] = []
  const serverErrors: Error[] = []

  // The provider's HTTP server first: the issuer needs its port.
  const providerServer = await startProviderServer()
  const { issuer, tokenUrl, introspectionUrl, revocationUrl } = providerServer
  const jwksUri = `${issuer}/jwks`

  // The API, which needs the issuer; its own origin names the resources.
  const jwks = createRemoteJWKSet(new URL(jwksUri))
  const hits: ApiHit[] = []
  let expiredArrivals = 0
  const resources = { reports: '', ticks: '' }
  const apiServer = await startServer(async (req, res) => {
    const token = bearerToken(req)
    const hit: ApiHit = {
      path: req.url ?? '',
      kind: token === undefined ? 'none' : token.split('.').length === 3 ? 'jwt' : 'opaque',
      outcome: 'ok',
      token,
      claims: undefined,
    }
    hits.push(hit)
    if (token === undefined) {
      hit.outcome = 'missing'
    } else if (hit.kind === 'jwt') {
      try {
        const { payload } = await jwtVerify(token, jwks, {
          issuer,
          audience: [resources.reports, resources.ticks],
          typ: 'at+jwt',
          clockTolerance: 0,
        })
        hit.claims = { ...(payload as JWTPayload & Record<string, unknown>) }
      } catch (error) {
        if (error instanceof joseErrors.JWTExpired) {
          expiredArrivals++
          hit.outcome = 'expired'
        } else {
          hit.outcome = 'invalid'
        }
      }
    } else {
      const answer = await postForm(introspectionUrl, apiAuthorization, {
        token,
        token_type_hint: 'access_token',
      })
      hit.claims = answer.json
      if (answer.status !== 200) hit.outcome = 'invalid'
      else if (answer.json?.active !== true) hit.outcome = 'inactive'
    }
    if (hit.outcome === 'missing') {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="reports"' })
      res.end()
      return
    }
    if (hit.outcome !== 'ok') {
      res.writeHead(401, {
        'www-authenticate': 'Bearer realm="reports", error="invalid_token"',
        'content-type': 'text/plain',
      })
      res.end('invalid_token')
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(
      JSON.stringify({
        kind: hit.kind,
        client_id: hit.claims?.client_id,
        scope: hit.claims?.scope,
        aud: hit.claims?.aud,
      }),
    )
  })
  resources.reports = `${apiServer.origin}/reports`
  resources.ticks = `${apiServer.origin}/ticks`
  const ttlOf: Record<string, number> = {
    [resources.reports]: 300,
    [resources.ticks]: shortTokenTtl,
  }

  const secretClient = (client: Client, grantTypes?: string[]) =>
    clientMetadata(
      client.clientId,
      { client_secret: client.clientSecret, token_endpoint_auth_method: client.authMethod },
      grantTypes,
    )

  const base = baseConfiguration(apiClient.clientId)
  const provider = new Provider(issuer, {
    ...base,
    clients: [secretClient(basicClient), secretClient(postClient), secretClient(apiClient, [])],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    scopes: ['read', 'write', 'admin'],
    features: {
      ...base.features,
      revocation: ownTokenRevocation,
      resourceIndicators: {
        enabled: true,
        // No resource indicator: an opaque token, checked by introspection.
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => {
          const accessTokenTTL = ttlOf[resource]
          if (accessTokenTTL === undefined) throw new oidcErrors.InvalidTarget()
          return {
            scope: 'read write',
            audience: resource,
            accessTokenTTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          }
        },
      },
    },
  })
  recordGrants(provider, grants, serverErrors)
  providerServer.serve(provider)

  return {
    issuer,
    tokenUrl,
    introspectionUrl,
    revocationUrl,
    jwksUri,
    basicClient,
    postClient,
    resources,
    api: {
      ...apiServer,
      hits,
      get expiredArrivals() {
        return expiredArrivals
      },
    },
    grants,
    get tokenRequests() {
      return providerServer.tokenRequests
    },
    serverErrors,
    revoke: (token, client) => revokeAs(revocationUrl, token, client),
    introspect: introspector(introspectionUrl, apiAuthorization),
    async close() {
      await apiServer.close()
      await providerServer.close()
    },
  }
}

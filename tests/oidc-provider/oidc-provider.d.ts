// oidc-provider ships no type declarations. This covers only what
// tests/oidc-provider/provider.ts and mtls-provider.ts use.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'
  import type { Socket } from 'node:net'

  /** The parts of the koa context (plus `ctx.oidc`) the test helpers read. */
  export interface ProviderContext {
    status: number
    body: unknown
    req: IncomingMessage
    socket: Socket
    oidc?:
      | {
          client?: { clientId: string; scope?: string | undefined } | undefined
          params?: Record<string, string | undefined> | undefined
        }
      | undefined
  }

  /** The context a grant handler gets: there is always a client and params. */
  export interface GrantContext extends ProviderContext {
    oidc: {
      client: { clientId: string; scope?: string | undefined }
      params: Record<string, string | undefined>
    }
  }

  export interface AdapterPayload {
    [claim: string]: unknown
  }

  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void>
    find(id: string): Promise<AdapterPayload | undefined>
    findByUid(uid: string): Promise<AdapterPayload | undefined>
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>
    consume(id: string): Promise<void>
    destroy(id: string): Promise<void>
    revokeByGrantId(grantId: string): Promise<void>
  }

  /** What a resource server's JWT access tokens look like (features.resourceIndicators). */
  export interface ResourceServerInfo {
    audience: string
    scope: string
    accessTokenTTL?: number
    accessTokenFormat?: 'opaque' | 'jwt'
    jwt?: { sign?: { alg: string } }
    identifier?: () => string
  }

  /** The client_credentials access token model; custom grants issue these too. */
  export interface ClientCredentialsToken {
    clientId: string
    scope?: string | undefined
    extra?: Record<string, unknown>
    resourceServer?: ResourceServerInfo
    readonly expiration: number
    readonly 'x5t#S256'?: string
    save(): Promise<string>
  }

  export class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>)
    readonly issuer: string
    readonly ClientCredentials: {
      new (init: { client: unknown; scope?: string | undefined }): ClientCredentialsToken
      find(value: string): Promise<ClientCredentialsToken | undefined>
    }
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    registerGrantType(
      name: string,
      handler: (ctx: GrantContext) => Promise<void>,
      params?: string | string[],
      dupes?: string | string[],
    ): void
    on(event: 'grant.success', listener: (ctx: ProviderContext) => void): this
    on(
      event: 'grant.error' | 'server_error',
      listener: (
        ctx: ProviderContext,
        error: Error & { error?: string; error_description?: string; error_detail?: string },
      ) => void,
    ): this
  }

  type OidcError = new (description?: string) => Error & { error: string }

  export const errors: {
    InvalidTarget: OidcError
    InvalidGrant: OidcError
    InvalidRequest: OidcError
    InvalidScope: new (description: string, scope: string) => Error & { error: string }
  }

  export default Provider
}

// oidc-provider ships no type declarations. This covers only what
// tests/oidc-provider/provider.ts uses.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  /** The parts of the koa context (plus `ctx.oidc`) the test helper reads. */
  export interface ProviderContext {
    status: number
    body: unknown
    oidc?: { client?: { clientId: string } | undefined } | undefined
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

  export class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>)
    readonly issuer: string
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    on(event: 'grant.success', listener: (ctx: ProviderContext) => void): this
    on(
      event: 'grant.error' | 'server_error',
      listener: (ctx: ProviderContext, error: Error & { error?: string }) => void,
    ): this
  }

  export const errors: {
    InvalidTarget: new (description?: string) => Error
  }

  export default Provider
}

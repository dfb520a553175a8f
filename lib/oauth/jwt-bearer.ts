import { nameGrant } from '../diagnostics.js'
import type { FetchToken } from '../types.js'
import { type GrantOptions, type GrantValue, grantRequest, grantValue } from './grant.js'

/** Options of `jwtBearer()`: the JWT bearer authorization grant (RFC 7523 §2.1). */
export interface JwtBearerOptions extends GrantOptions {
  /**
   * The JWT to exchange for an access token, or a function that gets it afresh for
   * every token fetch (a JWT is short-lived, and many servers accept each `jti` once).
   */
  assertion: GrantValue
}

const grantType = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/**
 * A `FetchToken` for the JWT bearer grant (RFC 7523 §2.1): `assertion` (re-obtained on
 * every fetch, redacted from every error) exchanged for an access token — Entra ID's
 * on-behalf-of flow, or a service account's self-signed JWT.
 *
 * Client authentication is optional for this grant (§2.1: the assertion authenticates
 * it): with no `clientId`, `clientSecret` or `clientAuth` at all, none is sent (Google
 * service accounts); otherwise a `clientId` and a `clientSecret` or `clientAuth` are needed.
 */
export function jwtBearer(options: JwtBearerOptions): FetchToken {
  const send = grantRequest(options, { grantType, name: 'jwtBearer', clientOptional: true })
  const assertion = grantValue(options.assertion, 'jwtBearer: assertion')
  return nameGrant(grantType, async (context) => {
    const jwt = await assertion(context.signal)
    return send([['assertion', jwt]], context, [jwt])
  })
}

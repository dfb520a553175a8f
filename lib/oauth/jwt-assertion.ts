/*
 * The JWT client assertion (RFC 7523 §3) and the form fields that carry it (RFC 7521 §4.2,
 * RFC 7523 §2.2): its claims — iss = sub = client_id, one `aud`, a short `exp`, a fresh
 * `jti` — signed afresh on every call, since servers refuse a `jti` they have seen (OIDC
 * Core §9, Okta, Auth0, Keycloak, oidc-provider). The ClientAuth factories that use it are
 * in jwt-client-auth.ts.
 */

import { TokenRequestError } from '../errors.js'
import { type ClientAuth, type ClientAuthRequest, withMethod } from './client-auth.js'
import { encodeSegment, type JwsSigner, randomId } from './jws.js'

/** RFC 7523 §2.2. */
const jwtBearer = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

/** The claims of the assertions `clientSecretJwt` and `privateKeyJwt` sign. */
export interface AssertionOptions {
  /**
   * The `aud` claim, always ONE string (an array fails at Entra ID and, by default,
   * Keycloak): `'token_endpoint'` (the default) is the token endpoint URL as given or
   * discovered — what Entra ID, Okta, Keycloak and OIDC Core §9 expect; `'issuer'` is the
   * issuer as configured or discovered — Auth0 (`https://{tenant}.auth0.com/`, trailing
   * slash included), FAPI 2.0, draft-ietf-oauth-rfc7523bis; any other string is sent as is.
   */
  audience?: 'token_endpoint' | 'issuer' | string
  /** Seconds from `iat` to `exp`; default 60. Auth0 allows at most 300, Okta 3600. */
  lifetime?: number
}

/** A ClientAuth that signs a fresh assertion (RFC 7523 §3) on every call. */
export function jwtAssertion(
  method: string,
  signer: JwsSigner,
  options: AssertionOptions,
  label: string,
): ClientAuth {
  const audience = audienceOf(options.audience, label)
  const lifetime = options.lifetime ?? 60
  if (typeof lifetime !== 'number' || !Number.isInteger(lifetime) || lifetime <= 0) {
    throw new TypeError(`${label}: lifetime must be a positive whole number of seconds`)
  }
  return withMethod(method, (request) => {
    const now = Math.floor(Date.now() / 1000)
    // RFC 7523 §3 and OIDC Core §9: iss = sub = client_id, aud, exp, jti (128 random bits);
    // iat and nbf as oauth4webapi sends them (Entra ID lists nbf among its claims).
    const claims = {
      iss: request.clientId,
      sub: request.clientId,
      aud: audience(request),
      jti: randomId(),
      iat: now,
      nbf: now,
      exp: now + lifetime,
    }
    setAssertion(request, signer.sign(encodeSegment(claims)))
  })
}

/** The `aud` claim, one string, per the `audience` option. */
function audienceOf(
  option: AssertionOptions['audience'],
  label: string,
): (request: ClientAuthRequest) => string {
  if (option === undefined || option === 'token_endpoint') return (request) => request.tokenUrl.href
  if (option === 'issuer') {
    return (request) => {
      if (typeof request.issuer !== 'string' || request.issuer.length === 0) {
        throw new TokenRequestError(
          `${label}: audience 'issuer' needs an issuer; give the grant one (nothing was sent)`,
        )
      }
      return request.issuer
    }
  }
  if (typeof option !== 'string' || option.length === 0) {
    throw new TypeError(
      `${label}: audience must be 'token_endpoint', 'issuer' or a non-empty string (one audience)`,
    )
  }
  return () => option
}

/**
 * RFC 7521 §4.2 / RFC 7523 §2.2. `client_id` is OPTIONAL there but sent: Entra ID needs it
 * with a federated assertion (whose `sub` is the workload, not the client), and servers
 * that check it (oidc-provider: "client_id mismatch") want it equal to `sub`, as ours is.
 */
export function setAssertion({ clientId, form }: ClientAuthRequest, assertion: string): void {
  form.set('client_id', clientId)
  form.set('client_assertion_type', jwtBearer)
  form.set('client_assertion', assertion)
}

/**
 * DPoP (RFC 9449) on both sides, for tests/dpop.test.ts and tests/oidc-provider/dpop.test.ts:
 *
 * - `ProofVerifier`: checks a DPoP proof the way a careful server does — signature by the
 *   embedded public JWK (jose `EmbeddedJWK`), `typ: dpop+jwt`, only public members in the
 *   `jwk`, `htm`, `htu` (exact: origin and path, no query or fragment), `iat` within
 *   ±60 s, a `jti` never seen before (a replayed proof is refused), `ath` =
 *   base64url(SHA-256(token)) when a token goes with it, and the server's own nonce;
 * - `startDpopResourceServer()`: a protected API on 127.0.0.1 that takes only
 *   `Authorization: DPoP <token>` with a proof that verifies, and whose key thumbprint is
 *   the one the token is bound to (`cnf.jkt`, from the `binding` lookup given: a map, or
 *   introspection);
 * - `startDpopOidcEnvironment()`: oidc-provider with `features.dPoP` and nonces required,
 *   a `client_secret_basic` and a `private_key_jwt` client with `dpop_bound_access_tokens`,
 *   and that resource server checking tokens by introspection (RFC 7662).
 *
 * Every secret, key and issued token is registered with the suite-wide secret scan.
 */
import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import {
  ath,
  ProofChecker,
  type ProofExpectation,
  type ProofOutcome,
  htuOf as pathOf,
} from '../support/dpop.js'
import { registerSecret } from '../support/secret-registry.js'
import { rawHeaderValues, startServer, type TestServer } from '../support/servers.js'
import {
  baseConfiguration,
  basicAuthorization,
  type Client,
  clientMetadata,
  clientWith,
  introspector,
  newSecret,
  ownTokenRevocation,
  recordGrants,
  revokeAs,
  startProviderServer,
  type TokenGrant,
} from './provider.js'

export type { ProofClaims, ProofExpectation, ProofOutcome } from '../support/dpop.js'
// The proof checks are tests/support/dpop.js's (node:crypto, no jose), which the compat
// cells share; ProofVerifier gives them the async face the servers here await.
export { ath, pathOf }

/** Checks DPoP proofs for one server: its jti memory and its own nonce. */
export class ProofVerifier extends ProofChecker {
  /** Checks the request's DPoP header(s) (raw, so that two show as two). */
  async verify(proofs: readonly string[], expected: ProofExpectation): Promise<ProofOutcome> {
    return this.check(proofs, expected)
  }
}

/** What a resource server knows of a token: whether it is good, and the key it is bound to. */
export interface Binding {
  active: boolean
  /** `cnf.jkt`; undefined: an unbound (Bearer) token. */
  jkt?: string | undefined
}

/** One request to the DPoP resource server. */
export interface DpopHit {
  method: string
  url: string
  authorization: string | undefined
  /** The DPoP header values as sent. */
  proofs: string[]
  body: string
  /** The nonce the proof carried, when it verified far enough to say. */
  nonce: string | undefined
  jti: string | undefined
  status: number
  /** The `error` the server answered, if any. */
  error: string | undefined
}

/** A forced answer for one request, instead of the checks (the `before` hook). */
export type Override =
  | { error: 'invalid_token' | 'use_dpop_nonce'; rotate?: boolean }
  | { status: number; headers?: Record<string, string>; body?: string }

export interface DpopResourceServerOptions {
  verifier: ProofVerifier
  /** What the server knows of a token: introspection, or a test's map. */
  binding: (token: string) => Binding | Promise<Binding | undefined> | undefined
  /** Unbound tokens may come as `Bearer` (without a proof); default false. */
  allowBearer?: boolean
  /** Send the current nonce on every answer, 200s too (RFC 9449 §9); default false. */
  nonceOnEveryAnswer?: boolean
}

export interface DpopResourceServer extends TestServer {
  readonly hits: DpopHit[]
  /** Called first for each request (after the proof is checked): an answer to force. */
  before: ((hit: DpopHit, outcome: ProofOutcome | undefined) => Override | undefined) | undefined
  /** Tokens refused from now on (invalid_token), e.g. revoked. */
  readonly revoked: Set<string>
  /** Statuses per path (without query), in order. */
  statusesOf(path: string): number[]
}

/** `Authorization: <scheme> <token>`, split. */
function credentials(authorization: string | undefined): { scheme: string; token: string } {
  const match = /^(\S+) +(\S+)$/.exec(authorization ?? '')
  return { scheme: match?.[1] ?? '', token: match?.[2] ?? '' }
}

/**
 * A protected API that takes DPoP-bound tokens only with a valid proof of their key (or,
 * with `allowBearer`, unbound ones as Bearer). Checks in the order oidc-provider does:
 * the proof (and its nonce) first, then the token and its binding.
 */
export async function startDpopResourceServer(
  options: DpopResourceServerOptions,
): Promise<DpopResourceServer> {
  const { verifier } = options
  const hits: DpopHit[] = []
  const revoked = new Set<string>()
  let origin = ''
  // The handler reads the hook from the object returned (tests set it there).
  const state: { before: DpopResourceServer['before'] } = { before: undefined }
  const server = await startServer(async (req: IncomingMessage, res, body) => {
    const proofs = rawHeaderValues(req.rawHeaders, 'dpop')
    const hit: DpopHit = {
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      proofs,
      body: body.toString(),
      nonce: undefined,
      jti: undefined,
      status: 0,
      error: undefined,
    }
    hits.push(hit)
    const answer = (
      status: number,
      error: string | undefined,
      extra: Record<string, string> = {},
      payload = '',
    ): void => {
      hit.status = status
      hit.error = error
      const headers: Record<string, string> = { ...extra }
      if (error !== undefined) {
        headers['www-authenticate'] = `DPoP error="${error}", algs="ES256 EdDSA"`
      }
      const nonce = verifier.nonce
      if (nonce !== undefined && (error === 'use_dpop_nonce' || options.nonceOnEveryAnswer)) {
        headers['dpop-nonce'] = nonce
      }
      res.writeHead(status, headers)
      res.end(payload)
    }
    const { scheme, token } = credentials(hit.authorization)
    let outcome: ProofOutcome | undefined
    if (scheme === 'DPoP') {
      outcome = await verifier.verify(proofs, {
        htm: hit.method,
        htu: `${origin}${pathOf(hit.url)}`,
        accessToken: token,
      })
      if (outcome.ok) {
        hit.nonce = outcome.claims.nonce
        hit.jti = outcome.claims.jti
      }
    }
    const forced = state.before?.(hit, outcome)
    if (forced !== undefined) {
      if ('error' in forced) {
        if (forced.rotate) verifier.rotateNonce()
        answer(401, forced.error)
      } else {
        hit.status = forced.status
        res.writeHead(forced.status, forced.headers ?? {})
        res.end(forced.body ?? '')
      }
      return
    }
    if (scheme === 'Bearer' && options.allowBearer && proofs.length === 0) {
      const binding = await options.binding(token)
      if (binding?.active && binding.jkt === undefined && !revoked.has(token)) {
        answer(200, undefined, { 'content-type': 'application/json' }, ok(hit))
      } else {
        // RFC 9449 §7.2: a DPoP-bound token presented as a Bearer token is refused.
        answer(401, 'invalid_token')
      }
      return
    }
    if (scheme !== 'DPoP' || outcome === undefined) {
      answer(401, 'invalid_token')
      return
    }
    if (!outcome.ok) {
      answer(401, outcome.error)
      return
    }
    const binding = await options.binding(token)
    if (binding?.active !== true || revoked.has(token) || binding.jkt !== outcome.thumbprint) {
      answer(401, 'invalid_token')
      return
    }
    answer(200, undefined, { 'content-type': 'application/json' }, ok(hit))
  })
  origin = server.origin
  const result = Object.assign(server, {
    hits,
    revoked,
    before: undefined as DpopResourceServer['before'],
    statusesOf(path: string) {
      return hits.filter((hit) => pathOf(hit.url) === path).map((hit) => hit.status)
    },
  })
  Object.defineProperty(result, 'before', {
    get: () => state.before,
    set: (value: DpopResourceServer['before']) => {
      state.before = value
    },
  })
  return result
}

function ok(hit: DpopHit): string {
  return JSON.stringify({ ok: true, path: hit.url, body: hit.body })
}

/** One answer of the provider's token endpoint. */
export type DpopGrant = TokenGrant

export interface DpopOidcEnvironment {
  readonly issuer: string
  readonly tokenUrl: string
  /** A `client_secret_basic` client with `dpop_bound_access_tokens: true`. */
  readonly basicClient: Client
  /** A `private_key_jwt` client (ES256) with `dpop_bound_access_tokens: true`. */
  readonly keyClient: { readonly clientId: string; readonly key: KeyObject }
  readonly api: DpopResourceServer
  /** The API's proof checks (its own nonce, which `rotateNonce()` changes). */
  readonly verifier: ProofVerifier
  /** Every token endpoint answer, in order. */
  readonly grants: DpopGrant[]
  /** POST requests that reached the token endpoint. */
  readonly tokenRequests: number
  /** Errors oidc-provider reported as `server_error`: should stay empty. */
  readonly serverErrors: Error[]
  /** Introspection (RFC 7662) as the API. */
  introspect(token: string): Promise<Record<string, unknown>>
  /** Revokes a token (RFC 7009) as the basic client. */
  revoke(token: string): Promise<void>
  close(): Promise<void>
}

/**
 * oidc-provider with `features.dPoP` (nonces required: `nonceSecret` and
 * `requireNonce: () => true`), and a DPoP resource server that checks every proof with
 * a `ProofVerifier` (its own nonce required) and every token by introspection: active,
 * `token_type` DPoP, `cnf.jkt` equal to the proof key's thumbprint.
 */
export async function startDpopOidcEnvironment(): Promise<DpopOidcEnvironment> {
  const { default: Provider } = await import('oidc-provider')
  const basicClient = clientWith('dpop-basic', newSecret(), 'client_secret_basic')
  const apiClient = clientWith('dpop-api', newSecret(), 'client_secret_basic')
  const apiAuthorization = basicAuthorization(apiClient.clientId, apiClient.clientSecret)
  const clientKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const clientJwk = clientKey.privateKey.export({ format: 'jwk' })
  registerSecret(clientJwk.d)
  const keyClient = { clientId: 'dpop-pk-jwt', key: clientKey.privateKey }

  const grants: DpopGrant[] = []
  const serverErrors: Error[] = []

  const providerServer = await startProviderServer()
  const { issuer, tokenUrl, introspectionUrl, revocationUrl } = providerServer

  // No resource indicators here: every token lives the base configuration's 600 s.
  const base = baseConfiguration(apiClient.clientId)
  const provider = new Provider(issuer, {
    ...base,
    clients: [
      clientMetadata(basicClient.clientId, {
        client_secret: basicClient.clientSecret,
        token_endpoint_auth_method: 'client_secret_basic',
        dpop_bound_access_tokens: true,
      }),
      clientMetadata(keyClient.clientId, {
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: clientJwk.x, y: clientJwk.y, alg: 'ES256' }] },
        dpop_bound_access_tokens: true,
      }),
      clientMetadata(
        apiClient.clientId,
        {
          client_secret: apiClient.clientSecret,
          token_endpoint_auth_method: 'client_secret_basic',
        },
        [],
      ),
    ],
    clientAuthMethods: ['client_secret_basic', 'private_key_jwt'],
    scopes: ['read', 'write'],
    features: {
      ...base.features,
      revocation: ownTokenRevocation,
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
    },
  })
  recordGrants(provider, grants, serverErrors)
  providerServer.serve(provider)

  const introspect = introspector(introspectionUrl, apiAuthorization, {
    token_type_hint: 'access_token',
  })

  const verifier = new ProofVerifier({ requireNonce: true, label: 'oidc-api' })
  const api = await startDpopResourceServer({
    verifier,
    async binding(token) {
      const claims = await introspect(token)
      const cnf = claims.cnf as { jkt?: unknown } | undefined
      return {
        active: claims.active === true && claims.token_type === 'DPoP',
        jkt: typeof cnf?.jkt === 'string' ? cnf.jkt : undefined,
      }
    },
  })

  return {
    issuer,
    tokenUrl,
    basicClient,
    keyClient,
    api,
    verifier,
    grants,
    get tokenRequests() {
      return providerServer.tokenRequests
    },
    serverErrors,
    introspect,
    revoke: (token) => revokeAs(revocationUrl, token, basicClient),
    async close() {
      await api.close()
      await providerServer.close()
    },
  }
}

/**
 * oidc-provider for the strong client authentication, grant and discovery tests: one
 * provider served on two origins,
 *
 * - `http://127.0.0.1:<p>` — its issuer by default: client_secret_jwt, private_key_jwt,
 *   token exchange and the JWT bearer grant, discovery;
 * - `https://127.0.0.1:<q>` — TLS with `requestCert: true, rejectUnauthorized: false`
 *   (RFC 8705): tls_client_auth and self_signed_tls_client_auth, certificate-bound
 *   tokens. `/mtls/token` there is the provider's token endpoint under another path,
 *   published as `mtls_endpoint_aliases.token_endpoint` (RFC 8705 §5) so a test sees
 *   which endpoint a client used. With `{ issuer: 'https' }` this origin is the issuer;
 *
 * and a protected API on both schemes that checks tokens as a resource server does:
 * JWT access tokens with jose against the provider's JWKS, opaque ones by introspection
 * (RFC 7662) — and for a certificate-bound token (`cnf["x5t#S256"]`, RFC 8705 §3) that the
 * request came with that very certificate. Over HTTPS the API asks for a client
 * certificate but lets the request in without one (the token decides).
 *
 * Token exchange (RFC 8693) and the JWT bearer grant (RFC 7523 §2.1) are not built into
 * oidc-provider; they are registered here with `registerGrantType`. Their subject
 * tokens and assertions come from the provider itself (its access tokens, checked in
 * its store) or from a "workload identity" issuer whose ES256 key is made per
 * environment (a JWT checked with jose).
 *
 * Keys, certificates and secrets are made per environment; every one of them, every
 * issued token and every assertion sent is registered with the suite-wide secret scan.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type JsonWebKey,
  type KeyObject,
  randomBytes,
  randomUUID,
} from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { promisify } from 'node:util'
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose'
import Provider, {
  type ClientCredentialsToken,
  type GrantContext,
  errors as oidcErrors,
  type ProviderContext,
  type ResourceServerInfo,
} from 'oidc-provider'
import { registerSecret } from '../support/secret-registry.js'
import {
  baseConfiguration,
  basicAuthorization,
  type Client,
  clientMetadata as ccClient,
  clientWith,
  closeServer,
  introspector,
  listen,
  newSecret,
  postForm,
} from './provider.js'
import { certificateThumbprint, makeCertificates, type TestCertificates } from './tls.js'

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
export const TOKEN_TYPE = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  idToken: 'urn:ietf:params:oauth:token-type:id_token',
} as const

export type JwtAlg = 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA'

/** A private_key_jwt client: its key in every form a caller may hand it over. */
export interface KeyedClient {
  readonly clientId: string
  readonly alg: JwtAlg
  readonly kid: string
  readonly privateKey: KeyObject
  /** PKCS#8 PEM. */
  readonly pem: string
  /** The private JWK (no kid, no alg). */
  readonly jwk: JsonWebKey
}

export interface CertificateCredentialClient {
  readonly clientId: string
  /** PEM, RSA private key. */
  readonly key: string
  /** PEM, its self-signed certificate (registered with the client as `x5c`). */
  readonly certificate: string
  /** base64url SHA-256 of the certificate's DER: the `x5t#S256` header. */
  readonly x5tS256: string
  /** base64url SHA-1 of the certificate's DER: the `x5t` header. */
  readonly x5t: string
}

/** What the token endpoint saw of one request and what it answered. */
export interface TokenGrant {
  /** The URL the client posted to (the alias included). */
  url: string
  clientId: string | undefined
  grantType: string | undefined
  status: number
  error?: string
  /** oidc-provider's error_detail (what it does not tell the client), else its error_description. */
  description?: string
  accessToken?: string
  /** The response's issued_token_type (token exchange). */
  issuedTokenType?: string
  /** The client assertion sent (client_secret_jwt, private_key_jwt), decoded. */
  assertion?: { header: Record<string, unknown>; payload: JWTPayload }
  /** Whether the request came with a TLS client certificate, and its thumbprint. */
  certificate?: string
  /** The grant's own parameters that matter here. */
  params: Record<string, string>
}

export type Outcome =
  | 'ok'
  /** No bearer token. */
  | 'missing'
  /** Introspection: not active. */
  | 'inactive'
  /** Not a token of this provider, or not for this API (signature, issuer, audience, exp). */
  | 'invalid'
  /** Certificate-bound, and the request did not present that certificate (RFC 8705 §3). */
  | 'unbound'

export interface ApiHit {
  scheme: 'http' | 'https'
  path: string
  token: string | undefined
  kind: 'none' | 'jwt' | 'opaque'
  /** Thumbprint of the client certificate the request presented, if any. */
  presented: string | undefined
  outcome: Outcome
  claims: Record<string, unknown> | undefined
}

export interface ApiAnswerBody {
  kind: 'jwt' | 'opaque'
  client_id?: string
  scope?: string
  aud?: string | string[]
  cnf?: { 'x5t#S256'?: string }
  exchanged_sub?: string
  act?: { sub?: string }
  assertion_sub?: string
}

export interface StrongEnvironmentOptions {
  /** Which origin is the issuer; default 'http'. */
  issuer?: 'http' | 'https'
}

export interface StrongEnvironment {
  readonly issuer: string
  /** `http://127.0.0.1:<p>` and `https://127.0.0.1:<q>`. */
  readonly httpOrigin: string
  readonly httpsOrigin: string
  /** The provider's token endpoint on each origin. */
  readonly httpTokenUrl: string
  readonly httpsTokenUrl: string
  /** `https://127.0.0.1:<q>/mtls/token`, the `mtls_endpoint_aliases.token_endpoint`. */
  readonly mtlsTokenUrl: string
  readonly certs: TestCertificates
  readonly clients: {
    /** client_secret_jwt; its secret is 64+ characters (long enough for HS512). */
    readonly secretJwt: { readonly clientId: string; readonly secret: string }
    /** private_key_jwt, one client per algorithm, `token_endpoint_auth_signing_alg` pinned. */
    readonly pkJwt: Readonly<Record<JwtAlg, KeyedClient>>
    /** private_key_jwt with an RSA key registered by its certificate (`x5c`), no kid. */
    readonly certificateCredential: CertificateCredentialClient
    /** tls_client_auth by `certs.clientSubjectDn`; certificate-bound tokens. */
    readonly tls: { readonly clientId: string }
    /** self_signed_tls_client_auth with `certs.selfSigned`; certificate-bound tokens. */
    readonly selfSigned: { readonly clientId: string }
    /** client_secret_basic, client_credentials only: issues tokens to exchange. */
    readonly subjectSource: Client
    /** private_key_jwt (ES256), token exchange only. */
    readonly exchanger: KeyedClient
    /** client_secret_post, the JWT bearer grant only. */
    readonly bearer: Client
  }
  /**
   * An external identity issuer (a Kubernetes service-account issuer, say): its JWTs
   * are accepted as token-exchange subject/actor tokens and as JWT bearer assertions
   * when their `aud` is the provider's issuer or one of its token endpoint URLs.
   */
  readonly workload: {
    readonly issuer: string
    sign(claims: { sub: string; aud?: string; expiresIn?: number; jti?: string }): Promise<string>
  }
  /** Signs a client assertion for a private_key_jwt client as a signing service would. */
  signAssertion(client: KeyedClient, audience: string): Promise<string>
  /** Resource indicators the provider knows (JWT access tokens): one per API scheme. */
  readonly resources: { readonly http: string; readonly https: string }
  readonly api: {
    readonly httpOrigin: string
    readonly httpsOrigin: string
    readonly hits: ApiHit[]
  }
  /** Every token endpoint answer, in order. */
  readonly grants: TokenGrant[]
  /** URLs of the discovery documents fetched, in order. */
  readonly discoveryRequests: string[]
  /** Errors oidc-provider reported as `server_error`: a configuration problem; should stay empty. */
  readonly serverErrors: Error[]
  /** Every secret made for this environment (keys' PEMs, client secrets): for expectNoSecrets. */
  readonly secrets: string[]
  /** Asks the introspection endpoint about a token, as the API. */
  introspect(token: string): Promise<Record<string, unknown>>
  close(): Promise<void>
}

/** Forgets what the previous test recorded: grants, API hits, discovery requests. */
export function resetRecords(env: StrongEnvironment): void {
  env.grants.length = 0
  env.api.hits.length = 0
  env.discoveryRequests.length = 0
}

const generate = promisify(generateKeyPair)

function kid(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`
}

const base64url = (bytes: Buffer) => bytes.toString('base64url')

/** A key for a private_key_jwt client; its private forms are registered as secrets. */
async function keyedClient(clientId: string, alg: JwtAlg): Promise<KeyedClient> {
  const { privateKey } =
    alg === 'EdDSA'
      ? await generate('ed25519')
      : alg === 'ES256' || alg === 'ES384'
        ? await generate('ec', { namedCurve: alg === 'ES256' ? 'P-256' : 'P-384' })
        : await generate('rsa', { modulusLength: 2048 })
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  const jwk = privateKey.export({ format: 'jwk' })
  registerKey(privateKey)
  return { clientId, alg, kid: kid(alg.toLowerCase()), privateKey, pem, jwk }
}

/** Every private form of a key (PEM PKCS#8, its DER in base64, the JWK's private members). */
function registerKey(key: KeyObject): void {
  const pem = key.export({ format: 'pem', type: 'pkcs8' }).toString()
  registerSecret(pem)
  registerSecret(key.export({ format: 'der', type: 'pkcs8' }).toString('base64'))
  for (const line of pem.split('\n')) if (line.length >= 40) registerSecret(line)
  const jwk = key.export({ format: 'jwk' }) as Record<string, unknown>
  for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) {
    if (typeof jwk[member] === 'string') registerSecret(jwk[member])
  }
  if (key.asymmetricKeyType === 'rsa') {
    registerSecret(key.export({ format: 'pem', type: 'pkcs1' }).toString())
  } else if (key.asymmetricKeyType === 'ec') {
    registerSecret(key.export({ format: 'pem', type: 'sec1' }).toString())
  }
}

function publicJwk(
  key: KeyObject | string,
  extra: Record<string, unknown>,
): Record<string, unknown> {
  const pub = typeof key !== 'string' && key.type === 'public' ? key : createPublicKey(key)
  return { ...pub.export({ format: 'jwk' }), use: 'sig', ...extra }
}

function peerThumbprint(req: IncomingMessage): string | undefined {
  const socket = req.socket as Partial<TLSSocket>
  const cert = socket.getPeerX509Certificate?.()
  return cert === undefined ? undefined : certificateThumbprint(cert)
}

function bearerToken(req: IncomingMessage): string | undefined {
  return /^Bearer +(\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
}

function decodeAssertion(assertion: string | undefined): TokenGrant['assertion'] {
  if (assertion === undefined) return undefined
  try {
    return {
      header: decodeProtectedHeader(assertion) as Record<string, unknown>,
      payload: decodeJwt(assertion),
    }
  } catch {
    return undefined
  }
}

/** The grant parameters a test may look at (never a credential). */
const recordedParams = [
  'scope',
  'resource',
  'audience',
  'subject_token_type',
  'actor_token_type',
  'requested_token_type',
  'client_assertion_type',
] as const

export async function startStrongEnvironment(
  options: StrongEnvironmentOptions = {},
): Promise<StrongEnvironment> {
  const [certs, rs256, ps256, es256, es384, eddsa, exchanger, workloadKey] = await Promise.all([
    makeCertificates(),
    keyedClient('pk-jwt-rs256', 'RS256'),
    keyedClient('pk-jwt-ps256', 'PS256'),
    keyedClient('pk-jwt-es256', 'ES256'),
    keyedClient('pk-jwt-es384', 'ES384'),
    keyedClient('pk-jwt-eddsa', 'EdDSA'),
    keyedClient('exchanger', 'ES256'),
    generate('ec', { namedCurve: 'P-256' }),
  ])
  registerKey(workloadKey.privateKey)
  registerKey(createPrivateKey(certs.credential.key))

  // A secret long enough for HS512, with the characters form encoding changes.
  const secretJwt = {
    clientId: 'secret-jwt',
    secret: `${newSecret()}${randomBytes(24).toString('base64url')}`,
  }
  registerSecret(secretJwt.secret)
  const subjectSource = clientWith('subject-source', newSecret(), 'client_secret_basic')
  const bearer = clientWith('jwt-bearer', newSecret(), 'client_secret_post')
  const apiClient = clientWith('strong-api', newSecret(), 'client_secret_basic')
  const certificateCredential: CertificateCredentialClient = {
    clientId: 'pk-jwt-cert',
    key: certs.credential.key,
    certificate: certs.credential.cert,
    x5tS256: certs.credential.thumbprint,
    x5t: base64url(createHash('sha1').update(certs.credential.x509.raw).digest()),
  }

  const grants: TokenGrant[] = []
  const serverErrors: Error[] = []
  const discoveryRequests: string[] = []
  const hits: ApiHit[] = []

  // Both of the provider's servers first: the issuer and the alias need their ports.
  const tlsOptions = {
    key: certs.server.key,
    cert: certs.server.cert,
    ca: certs.ca,
    requestCert: true,
    rejectUnauthorized: false,
  }
  const providerHttp = createServer()
  const providerHttps = createHttpsServer(tlsOptions)
  const httpOrigin = `http://127.0.0.1:${await listen(providerHttp)}`
  const httpsOrigin = `https://127.0.0.1:${await listen(providerHttps)}`
  const issuer = options.issuer === 'https' ? httpsOrigin : httpOrigin
  const httpTokenUrl = `${httpOrigin}/token`
  const httpsTokenUrl = `${httpsOrigin}/token`
  const mtlsTokenUrl = `${httpsOrigin}/mtls/token`
  // The API always introspects over plain HTTP: the same provider, no TLS to set up.
  const introspectionUrl = `${httpOrigin}/token/introspection`
  const apiAuthorization = basicAuthorization(apiClient.clientId, apiClient.clientSecret)

  // The API, on both schemes.
  const jwks = createRemoteJWKSet(new URL(`${httpOrigin}/jwks`))
  const resources = { http: '', https: '' }
  const apiHandler = async (
    scheme: 'http' | 'https',
    req: IncomingMessage,
    res: ServerResponse,
  ) => {
    const token = bearerToken(req)
    const hit: ApiHit = {
      scheme,
      path: req.url ?? '',
      token,
      kind: token === undefined ? 'none' : token.split('.').length === 3 ? 'jwt' : 'opaque',
      presented: peerThumbprint(req),
      outcome: 'ok',
      claims: undefined,
    }
    hits.push(hit)
    if (token === undefined) {
      hit.outcome = 'missing'
    } else if (hit.kind === 'jwt') {
      try {
        const { payload } = await jwtVerify(token, jwks, {
          issuer,
          audience: [resources.http, resources.https],
          typ: 'at+jwt',
          clockTolerance: 0,
        })
        hit.claims = { ...payload }
      } catch {
        hit.outcome = 'invalid'
      }
    } else {
      const answer = await postForm(introspectionUrl, apiAuthorization, { token })
      hit.claims = answer.json
      if (answer.status !== 200) hit.outcome = 'invalid'
      else if (answer.json?.active !== true) hit.outcome = 'inactive'
    }
    const bound = (hit.claims?.cnf as { 'x5t#S256'?: unknown } | undefined)?.['x5t#S256']
    if (hit.outcome === 'ok' && bound !== undefined && bound !== hit.presented)
      hit.outcome = 'unbound'
    if (hit.outcome === 'missing') {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="api"' }).end()
      return
    }
    if (hit.outcome !== 'ok') {
      res
        .writeHead(401, { 'www-authenticate': 'Bearer realm="api", error="invalid_token"' })
        .end('invalid_token')
      return
    }
    const claims = hit.claims ?? {}
    const body: ApiAnswerBody = { kind: hit.kind as 'jwt' | 'opaque' }
    for (const name of [
      'client_id',
      'scope',
      'aud',
      'cnf',
      'exchanged_sub',
      'act',
      'assertion_sub',
    ] as const) {
      if (claims[name] !== undefined) Object.assign(body, { [name]: claims[name] })
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  }
  const apiRequest = (scheme: 'http' | 'https') => (req: IncomingMessage, res: ServerResponse) => {
    registerSecret(req.headers.authorization)
    req.resume()
    req.on('end', () => {
      apiHandler(scheme, req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(error))
        else res.destroy()
      })
    })
  }
  const apiHttp = createServer(apiRequest('http'))
  const apiHttps = createHttpsServer(tlsOptions, apiRequest('https'))
  const apiHttpOrigin = `http://127.0.0.1:${await listen(apiHttp)}`
  const apiHttpsOrigin = `https://127.0.0.1:${await listen(apiHttps)}`
  resources.http = `${apiHttpOrigin}/reports`
  resources.https = `${apiHttpsOrigin}/reports`
  const resourceServer = (audience: string): ResourceServerInfo => ({
    audience,
    scope: 'read write',
    accessTokenTTL: 300,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'ES256' } },
  })

  // The workload identity issuer.
  const workloadIssuer = `https://workload.example/${randomBytes(4).toString('hex')}`
  const workloadKid = kid('workload')
  const workloadJwks = createLocalJWKSet({
    keys: [
      publicJwk(workloadKey.publicKey, { kid: workloadKid, alg: 'ES256' }) as JsonWebKey & {
        kty: string
      },
    ],
  })
  const workload = {
    issuer: workloadIssuer,
    async sign(claims: { sub: string; aud?: string; expiresIn?: number; jti?: string }) {
      const jwt = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: workloadKid, typ: 'JWT' })
        .setIssuer(workloadIssuer)
        .setSubject(claims.sub)
        .setAudience(claims.aud ?? issuer)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + (claims.expiresIn ?? 300))
        .setJti(claims.jti ?? randomUUID())
        .sign(workloadKey.privateKey)
      registerSecret(jwt)
      return jwt
    },
  }
  const providerAudiences = [issuer, httpTokenUrl, httpsTokenUrl, mtlsTokenUrl]
  const spentJtis = new Set<string>()
  /** A workload JWT's subject, or invalid_grant. */
  const workloadSubject = async (jwt: string, what: string): Promise<string> => {
    try {
      const { payload } = await jwtVerify(jwt, workloadJwks, {
        issuer: workloadIssuer,
        audience: providerAudiences,
        requiredClaims: ['sub', 'exp', 'jti'],
      })
      if (spentJtis.has(payload.jti as string)) throw new Error('jti already used')
      spentJtis.add(payload.jti as string)
      return payload.sub as string
    } catch {
      throw new oidcErrors.InvalidGrant(`${what} is invalid`)
    }
  }

  const pkJwt = { RS256: rs256, PS256: ps256, ES256: es256, ES384: es384, EdDSA: eddsa }
  const base = baseConfiguration(apiClient.clientId)
  const provider = new Provider(issuer, {
    ...base,
    clients: [
      ccClient(secretJwt.clientId, {
        client_secret: secretJwt.secret,
        token_endpoint_auth_method: 'client_secret_jwt',
      }),
      ...Object.values(pkJwt).map((client) =>
        ccClient(client.clientId, {
          token_endpoint_auth_method: 'private_key_jwt',
          token_endpoint_auth_signing_alg: client.alg,
          jwks: { keys: [publicJwk(client.privateKey, { kid: client.kid, alg: client.alg })] },
        }),
      ),
      ccClient(certificateCredential.clientId, {
        token_endpoint_auth_method: 'private_key_jwt',
        // Registered by its certificate, no kid: the assertion's header names it by x5t#S256.
        jwks: {
          keys: [
            publicJwk(certs.credential.cert, {
              x5c: [certs.credential.x5c],
              'x5t#S256': certificateCredential.x5tS256,
            }),
          ],
        },
      }),
      ccClient('tls', {
        token_endpoint_auth_method: 'tls_client_auth',
        tls_client_auth_subject_dn: certs.clientSubjectDn,
        tls_client_certificate_bound_access_tokens: true,
      }),
      ccClient('self-signed', {
        token_endpoint_auth_method: 'self_signed_tls_client_auth',
        jwks: { keys: [publicJwk(certs.selfSigned.cert, { x5c: [certs.selfSigned.x5c] })] },
        tls_client_certificate_bound_access_tokens: true,
      }),
      ccClient(subjectSource.clientId, {
        client_secret: subjectSource.clientSecret,
        token_endpoint_auth_method: 'client_secret_basic',
      }),
      ccClient(
        exchanger.clientId,
        {
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [publicJwk(exchanger.privateKey, { kid: exchanger.kid, alg: 'ES256' })] },
        },
        [TOKEN_EXCHANGE],
      ),
      ccClient(
        bearer.clientId,
        { client_secret: bearer.clientSecret, token_endpoint_auth_method: 'client_secret_post' },
        [JWT_BEARER],
      ),
      ccClient(
        apiClient.clientId,
        {
          client_secret: apiClient.clientSecret,
          token_endpoint_auth_method: 'client_secret_basic',
        },
        [],
      ),
    ],
    clientAuthMethods: [
      'client_secret_basic',
      'client_secret_post',
      'client_secret_jwt',
      'private_key_jwt',
      'tls_client_auth',
      'self_signed_tls_client_auth',
    ],
    // Every alg the package signs with (the default list has no HS384, HS512, ES384).
    enabledJWA: {
      clientAuthSigningAlgValues: [
        'HS256',
        'HS384',
        'HS512',
        'RS256',
        'PS256',
        'ES256',
        'ES384',
        'EdDSA',
      ],
    },
    scopes: ['read', 'write', 'admin'],
    // The custom grants set `extra` on the token; the default helper would replace it with nothing.
    extraTokenClaims: (_ctx: unknown, token: { extra?: Record<string, unknown> }) => token.extra,
    discovery: { mtls_endpoint_aliases: { token_endpoint: mtlsTokenUrl } },
    features: {
      ...base.features,
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => {
          if (resource !== resources.http && resource !== resources.https)
            throw new oidcErrors.InvalidTarget()
          return resourceServer(resource)
        },
      },
      mTLS: {
        enabled: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        certificateBoundAccessTokens: true,
        // undefined over plain HTTP and for a TLS client that sent no certificate.
        getCertificate: (ctx: ProviderContext) =>
          (ctx.socket as Partial<TLSSocket>).getPeerX509Certificate?.(),
        certificateAuthorized: (ctx: ProviderContext) =>
          (ctx.socket as Partial<TLSSocket>).authorized === true,
        certificateSubjectMatches: (ctx: ProviderContext, property: string, expected: string) => {
          const cert = (ctx.socket as Partial<TLSSocket>).getPeerX509Certificate?.()
          return (
            property === 'tls_client_auth_subject_dn' &&
            cert !== undefined &&
            cert.subject.split('\n').reverse().join(',') === expected
          )
        },
      },
    },
  })

  /** The scope a custom grant may issue: what was asked for, if the client may have all of it. */
  const grantedScope = (ctx: GrantContext): string | undefined => {
    const asked = (ctx.oidc.params.scope ?? '').split(' ').filter(Boolean)
    const allowed = new Set((ctx.oidc.client.scope ?? '').split(' '))
    const refused = asked.find((scope) => !allowed.has(scope))
    if (refused !== undefined)
      throw new oidcErrors.InvalidScope('requested scope is not allowed', refused)
    return asked.length === 0 ? undefined : asked.join(' ')
  }

  // RFC 8693 token exchange: the subject (and actor) token is one of this provider's
  // access tokens or a workload JWT; the issued token says whom it was exchanged for.
  const subjectOf = async (token: string | undefined, type: string | undefined, what: string) => {
    if (token === undefined || type === undefined) {
      throw new oidcErrors.InvalidRequest(`${what} and ${what}_type are required together`)
    }
    if (type === TOKEN_TYPE.accessToken) {
      const found = await provider.ClientCredentials.find(token)
      if (found === undefined) throw new oidcErrors.InvalidGrant(`${what} is not active`)
      return `client:${found.clientId}`
    }
    if (type === TOKEN_TYPE.jwt) return workloadSubject(token, what)
    throw new oidcErrors.InvalidRequest(`unsupported ${what}_type`)
  }
  provider.registerGrantType(
    TOKEN_EXCHANGE,
    async (ctx) => {
      const { params } = ctx.oidc
      const subject = await subjectOf(
        params.subject_token,
        params.subject_token_type,
        'subject_token',
      )
      const actor =
        params.actor_token === undefined && params.actor_token_type === undefined
          ? undefined
          : await subjectOf(params.actor_token, params.actor_token_type, 'actor_token')
      const issuedTokenType = params.requested_token_type ?? TOKEN_TYPE.accessToken
      if (issuedTokenType === TOKEN_TYPE.idToken) {
        // Not an access token (RFC 8693 §2.2.1: token_type N_A): an identity assertion
        // about the subject for the client, signed here by the workload issuer's key.
        ctx.body = {
          access_token: await workload.sign({ sub: subject, aud: ctx.oidc.client.clientId }),
          issued_token_type: issuedTokenType,
          token_type: 'N_A',
          expires_in: 300,
        }
        return
      }
      if (issuedTokenType !== TOKEN_TYPE.accessToken && issuedTokenType !== TOKEN_TYPE.jwt) {
        throw new oidcErrors.InvalidRequest('unsupported requested_token_type')
      }
      const token: ClientCredentialsToken = new provider.ClientCredentials({
        client: ctx.oidc.client,
        scope: grantedScope(ctx),
      })
      token.extra = {
        exchanged_sub: subject,
        ...(actor === undefined ? {} : { act: { sub: actor } }),
      }
      if (issuedTokenType === TOKEN_TYPE.jwt) {
        // A JWT for the audience asked for (RFC 8693 §2.1 `audience`), if this provider knows it.
        const audience = params.audience ?? params.resource ?? resources.http
        if (audience !== resources.http && audience !== resources.https)
          throw new oidcErrors.InvalidTarget()
        token.resourceServer = { ...resourceServer(audience), identifier: () => audience }
      }
      const value = await token.save()
      ctx.body = {
        access_token: value,
        issued_token_type: issuedTokenType,
        token_type: 'Bearer',
        expires_in: token.expiration,
        ...(token.scope === undefined ? {} : { scope: token.scope }),
      }
    },
    [
      'subject_token',
      'subject_token_type',
      'actor_token',
      'actor_token_type',
      'requested_token_type',
      'audience',
      'resource',
      'scope',
    ],
  )

  // RFC 7523 §2.1: a workload JWT as the authorization grant.
  provider.registerGrantType(
    JWT_BEARER,
    async (ctx) => {
      const { assertion } = ctx.oidc.params
      if (assertion === undefined) throw new oidcErrors.InvalidRequest('assertion is required')
      const subject = await workloadSubject(assertion, 'assertion')
      const token = new provider.ClientCredentials({
        client: ctx.oidc.client,
        scope: grantedScope(ctx),
      })
      token.extra = { assertion_sub: subject }
      const value = await token.save()
      ctx.body = {
        access_token: value,
        token_type: 'Bearer',
        expires_in: token.expiration,
        ...(token.scope === undefined ? {} : { scope: token.scope }),
      }
    },
    ['assertion', 'scope'],
  )

  const requestUrls = new WeakMap<IncomingMessage, string>()
  const record = (
    ctx: ProviderContext,
    status: number,
    error?: Error & { error?: string; error_description?: string; error_detail?: string },
  ) => {
    const params = ctx.oidc?.params ?? {}
    for (const name of [
      'client_assertion',
      'client_secret',
      'subject_token',
      'actor_token',
      'assertion',
    ]) {
      registerSecret(params[name])
    }
    const body = ctx.body as { access_token?: string; issued_token_type?: string } | undefined
    if (status === 200) registerSecret(body?.access_token)
    const assertion = decodeAssertion(params.client_assertion)
    const certificate = (ctx.socket as Partial<TLSSocket>).getPeerX509Certificate?.()
    const grant: TokenGrant = {
      url: requestUrls.get(ctx.req) ?? '',
      clientId: ctx.oidc?.client?.clientId,
      grantType: params.grant_type,
      status,
      params: {},
    }
    for (const name of recordedParams) {
      const value = params[name]
      if (value !== undefined) grant.params[name] = value
    }
    if (error?.error !== undefined) grant.error = error.error
    const description = error?.error_detail ?? error?.error_description
    if (description !== undefined) grant.description = description
    if (status === 200 && body?.access_token !== undefined) grant.accessToken = body.access_token
    if (status === 200 && body?.issued_token_type !== undefined)
      grant.issuedTokenType = body.issued_token_type
    if (assertion !== undefined) grant.assertion = assertion
    if (certificate !== undefined) grant.certificate = certificateThumbprint(certificate)
    grants.push(grant)
  }
  provider.on('grant.success', (ctx) => record(ctx, 200))
  provider.on('grant.error', (ctx, error) => record(ctx, ctx.status, error))
  provider.on('server_error', (_ctx, error) => {
    serverErrors.push(error)
  })

  const callback = provider.callback()
  const serve = (origin: string) => (req: IncomingMessage, res: ServerResponse) => {
    registerSecret(req.headers.authorization)
    const url = `${origin}${req.url ?? '/'}`
    requestUrls.set(req, url)
    const { pathname } = new URL(url)
    if (req.method === 'GET' && pathname.startsWith('/.well-known/')) discoveryRequests.push(url)
    // The mTLS alias: the provider's own token endpoint under another path.
    if (origin === httpsOrigin && pathname === '/mtls/token') req.url = '/token'
    callback(req, res)
  }
  providerHttp.on('request', serve(httpOrigin))
  providerHttps.on('request', serve(httpsOrigin))

  const secrets = [
    secretJwt.secret,
    ...subjectSource.secretForms,
    ...bearer.secretForms,
    ...apiClient.secretForms,
    ...[rs256, ps256, es256, es384, eddsa, exchanger].map((client) => client.pem),
    certs.client.key,
    certs.other.key,
    certs.selfSigned.key,
    certs.credential.key,
    certs.server.key,
  ]

  return {
    issuer,
    httpOrigin,
    httpsOrigin,
    httpTokenUrl,
    httpsTokenUrl,
    mtlsTokenUrl,
    certs,
    clients: {
      secretJwt,
      pkJwt,
      certificateCredential,
      tls: { clientId: 'tls' },
      selfSigned: { clientId: 'self-signed' },
      subjectSource,
      exchanger,
      bearer,
    },
    workload,
    async signAssertion(client, audience) {
      const jwt = await new SignJWT({})
        .setProtectedHeader({ alg: client.alg, kid: client.kid, typ: 'JWT' })
        .setIssuer(client.clientId)
        .setSubject(client.clientId)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime('60s')
        .setJti(randomBytes(16).toString('base64url'))
        .sign(client.privateKey)
      registerSecret(jwt)
      return jwt
    },
    resources,
    api: { httpOrigin: apiHttpOrigin, httpsOrigin: apiHttpsOrigin, hits },
    grants,
    discoveryRequests,
    serverErrors,
    secrets,
    introspect: introspector(introspectionUrl, apiAuthorization),
    async close() {
      await Promise.all([providerHttp, providerHttps, apiHttp, apiHttps].map(closeServer))
    },
  }
}

// Every ClientAuth method against a real authorization server (oidc-provider, see
// mtls-provider.ts): client_secret_jwt (HS256/384/512), private_key_jwt (RS256, PS256,
// ES256, ES384, EdDSA; an Entra-style certificate credential), a ready-made assertion
// (clientAssertion), a projected token file (federatedTokenFile), and mTLS
// (tls_client_auth, self_signed_tls_client_auth) with certificate-bound tokens checked by
// an API. Each token goes through accessToken() (or TokenCache) to an API that checks it.
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Agent, Dispatcher } from 'undici'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import {
  accessToken,
  type ClientAuth,
  clientAssertion,
  clientCredentials,
  clientSecretJwt,
  federatedTokenFile,
  privateKeyJwt,
  TokenCache,
  TokenRequestError,
  tlsClientAuth,
} from '../../lib/index.js'
import { registerSecret } from '../support/secret-registry.js'
import { expectNoSecrets } from '../support/secrets.js'
import { Agents, expectRefusedTokenRequest, get, rejection, rejectionOf } from './http.js'
import type { JwtAlg } from './mtls-provider.js'
import type { KeyAndCertificate } from './tls.js'
import { useStrongEnvironment } from './use-environment.js'

const agents = new Agents()
const env = useStrongEnvironment(agents)
let plain: Agent

beforeEach(() => {
  plain = agents.make(env.certs.ca)
})

const assertionType = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
/** How the token endpoint refuses a client it cannot authenticate (RFC 6749 §5.2). */
const invalidClient = { status: 401, error: 'invalid_client' }

/** A TokenCache for `clientId`: clientCredentials() at the plain-HTTP token endpoint. */
function tokensFor(clientId: string, clientAuth: ClientAuth): TokenCache {
  return new TokenCache({
    fetchToken: clientCredentials({ tokenUrl: env.httpTokenUrl, clientId, clientAuth }),
  })
}

/** The plain-HTTP API through `plain`, with tokens for `clientId` as `tokensFor` gets them. */
function apiWithToken(clientId: string, clientAuth: ClientAuth): Dispatcher {
  return plain.compose(
    accessToken({
      origins: env.api.httpOrigin,
      fetchToken: clientCredentials({ tokenUrl: env.httpTokenUrl, clientId, clientAuth }),
    }),
  )
}

/** The checks every signed assertion must pass (RFC 7523 §3, OIDC Core §9). */
function expectAssertionClaims(clientId: string, audience: string, index = 0) {
  const grant = env.grants[index]
  expect(grant?.params.client_assertion_type).toBe(assertionType)
  const payload = grant?.assertion?.payload
  expect(payload).toMatchObject({ iss: clientId, sub: clientId, aud: audience })
  // One audience, as a string: an array fails at Entra ID and at a default Keycloak.
  expect(typeof payload?.aud).toBe('string')
  // jti: at least 128 random bits, base64url.
  expect(payload?.jti).toMatch(/^[A-Za-z0-9_-]{22,}$/)
  expect((payload?.exp ?? 0) - (payload?.iat ?? 0)).toBe(60)
  return grant
}

describe('client_secret_jwt', () => {
  test('HS256 by default, aud = the token endpoint: a token the API accepts, fetched once', async () => {
    const { clientId, secret } = env.clients.secretJwt
    const api = apiWithToken(clientId, clientSecretJwt(secret))

    const answers = []
    for (let i = 0; i < 3; i++) answers.push(await get(api, `${env.api.httpOrigin}/reports/${i}`))

    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200])
    expect(answers[0]?.json).toMatchObject({ kind: 'opaque', client_id: clientId })
    expect(env.grants).toHaveLength(1)
    const grant = expectAssertionClaims(clientId, env.httpTokenUrl)
    expect(grant?.status).toBe(200)
    expect(grant?.assertion?.header).toMatchObject({ alg: 'HS256' })
    expect(env.api.hits.map((hit) => hit.outcome)).toEqual(['ok', 'ok', 'ok'])
  })

  test.each(['HS384', 'HS512'] as const)(
    '%s with audience "issuer": aud = the issuer, through TokenCache',
    async (alg) => {
      const { clientId, secret } = env.clients.secretJwt
      const tokens = new TokenCache({
        fetchToken: clientCredentials({
          tokenUrl: env.httpTokenUrl,
          issuer: env.issuer,
          clientId,
          clientAuth: clientSecretJwt(secret, { alg, audience: 'issuer' }),
          scope: 'read',
        }),
      })
      const api = plain.compose(accessToken({ origins: env.api.httpOrigin, tokens }))

      const answer = await get(api, `${env.api.httpOrigin}/reports`)

      expect(env.grants.map((grant) => grant.description)).toEqual([undefined])
      expect(answer).toEqual({
        status: 200,
        json: { kind: 'opaque', client_id: clientId, scope: 'read' },
      })
      expectAssertionClaims(clientId, env.issuer)
      expect(env.grants[0]?.assertion?.header).toMatchObject({ alg })
      expect(await tokens.get()).toMatchObject({ tokenType: 'Bearer', scope: 'read' })
    },
  )

  test("audience 'issuer' with a tokenUrl and no issuer: TokenRequestError, nothing sent", async () => {
    const { clientId, secret } = env.clients.secretJwt
    const tokens = tokensFor(clientId, clientSecretJwt(secret, { audience: 'issuer' }))

    const error = await rejectionOf(tokens.get())

    expect(error).toBeInstanceOf(TokenRequestError)
    expectNoSecrets(error, env.secrets)
    expect(env.grants).toEqual([])
  })

  test('a wrong secret is invalid_client: no secret in the error, nothing reaches the API', async () => {
    const { clientId, secret } = env.clients.secretJwt
    const wrong = `${secret.slice(0, -4)}XXXX`
    registerSecret(wrong)
    const api = apiWithToken(clientId, clientSecretJwt(wrong))

    const error = await rejection(api, `${env.api.httpOrigin}/reports`)

    expectRefusedTokenRequest(error, invalidClient, [...env.secrets, wrong])
    expect(env.api.hits).toEqual([])
  })
})

describe('private_key_jwt', () => {
  // Each client pins its token_endpoint_auth_signing_alg: the server refuses any other.
  // (ES384 is not among oidc-provider's defaults; mtls-provider.ts enables it.)
  // The key goes in every form the API takes; kid as registered, or none (RS256).
  const cases: Array<[JwtAlg, string, (alg: JwtAlg) => Parameters<typeof privateKeyJwt>[0]]> = [
    ['RS256', 'PEM, alg from the key, no kid', (alg) => ({ key: env.clients.pkJwt[alg].pem })],
    [
      'PS256',
      'KeyObject, alg PS256, kid',
      (alg) => ({
        key: env.clients.pkJwt[alg].privateKey,
        alg: 'PS256',
        kid: env.clients.pkJwt[alg].kid,
      }),
    ],
    [
      'ES256',
      'JWK, kid',
      (alg) => ({ key: env.clients.pkJwt[alg].jwk, kid: env.clients.pkJwt[alg].kid }),
    ],
    [
      'ES384',
      'PEM P-384, alg from the key, kid',
      (alg) => ({ key: env.clients.pkJwt[alg].pem, kid: env.clients.pkJwt[alg].kid }),
    ],
    [
      'EdDSA',
      'PEM Ed25519, kid',
      (alg) => ({ key: env.clients.pkJwt[alg].pem, kid: env.clients.pkJwt[alg].kid }),
    ],
  ]

  test.each(cases)('%s (%s): a token the API accepts', async (alg, _, options) => {
    const client = env.clients.pkJwt[alg]
    const api = apiWithToken(client.clientId, privateKeyJwt(options(alg)))

    const answers = [
      await get(api, `${env.api.httpOrigin}/reports/1`),
      await get(api, `${env.api.httpOrigin}/reports/2`),
    ]

    expect(answers.map((answer) => answer.status)).toEqual([200, 200])
    expect(answers[0]?.json).toMatchObject({ kind: 'opaque', client_id: client.clientId })
    expect(env.grants).toHaveLength(1)
    const grant = expectAssertionClaims(client.clientId, env.httpTokenUrl)
    const header = grant?.assertion?.header
    expect(header?.alg).toBe(alg)
    expect(header?.kid).toBe(alg === 'RS256' ? undefined : client.kid)
  })

  test('every fetch signs a new assertion: a renewal is not refused as a replayed jti', async () => {
    const client = env.clients.pkJwt.ES256
    const tokens = tokensFor(
      client.clientId,
      privateKeyJwt({ key: client.privateKey, kid: client.kid }),
    )

    const first = await tokens.get()
    await tokens.invalidate('default')
    const second = await tokens.get()
    await tokens.invalidate('default', second.accessToken)
    const third = await tokens.get()

    expect(env.grants.map((grant) => grant.status)).toEqual([200, 200, 200])
    expect(new Set([first, second, third].map((token) => token.accessToken)).size).toBe(3)
    const jtis = env.grants.map((grant) => grant.assertion?.payload.jti)
    expect(new Set(jtis).size).toBe(3)
    // Nothing of the key on the tokens.
    expectNoSecrets([first, second, third], env.secrets)
  })

  test('an RSA key for a PS256-only client: RS256 by default, refused as invalid_client', async () => {
    const client = env.clients.pkJwt.PS256
    const tokens = tokensFor(client.clientId, privateKeyJwt({ key: client.pem, kid: client.kid }))

    const error = await rejectionOf(tokens.get())

    expectRefusedTokenRequest(error, invalidClient, env.secrets)
    expect(env.grants[0]?.assertion?.header.alg).toBe('RS256')
  })

  test('a key the client did not register is invalid_client; no key material in the error', async () => {
    const client = env.clients.pkJwt.ES256
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    const strangerPem = stranger.export({ format: 'pem', type: 'pkcs8' }).toString()
    registerSecret(strangerPem)
    const api = apiWithToken(client.clientId, privateKeyJwt({ key: strangerPem, kid: client.kid }))

    const error = await rejection(api, `${env.api.httpOrigin}/reports`)

    expectRefusedTokenRequest(error, invalidClient, [...env.secrets, strangerPem])
    expect(env.api.hits).toEqual([])
  })

  describe('a certificate credential (Entra ID style: no kid, the certificate thumbprint)', () => {
    test.each([
      ['sha256', { 'x5t#S256': true, x5t: false }],
      ['sha1', { 'x5t#S256': false, x5t: true }],
      ['both', { 'x5t#S256': true, x5t: true }],
    ] as const)(
      'x5t %s: PS256, the thumbprint header(s), a token the API accepts',
      async (x5t, sent) => {
        const credential = env.clients.certificateCredential
        const api = apiWithToken(
          credential.clientId,
          privateKeyJwt({
            key: credential.key,
            certificate: credential.certificate,
            alg: 'PS256',
            x5t,
          }),
        )

        const answer = await get(api, `${env.api.httpOrigin}/reports`)

        expect(answer).toMatchObject({ status: 200, json: { client_id: credential.clientId } })
        const header = expectAssertionClaims(credential.clientId, env.httpTokenUrl)?.assertion
          ?.header
        expect(header).toMatchObject({ alg: 'PS256', typ: 'JWT' })
        expect(header?.kid).toBeUndefined()
        expect(header?.['x5t#S256']).toBe(sent['x5t#S256'] ? credential.x5tS256 : undefined)
        expect(header?.x5t).toBe(sent.x5t ? credential.x5t : undefined)
      },
    )
  })
})

describe('clientAssertion', () => {
  test('an assertion made elsewhere, asked for on every fetch with the token request it is for', async () => {
    const client = env.clients.pkJwt.ES256
    const calls: Array<{ tokenUrl: string; issuer: string | undefined; clientId: string }> = []
    const tokens = new TokenCache({
      fetchToken: clientCredentials({
        tokenUrl: env.httpTokenUrl,
        issuer: env.issuer,
        clientId: client.clientId,
        clientAuth: clientAssertion(async ({ tokenUrl, issuer, clientId, signal }) => {
          expect(signal).toBeInstanceOf(AbortSignal)
          calls.push({ tokenUrl: tokenUrl.href, issuer, clientId })
          // A signing service: the client's own key, the audience it is told.
          return env.signAssertion(client, tokenUrl.href)
        }),
      }),
    })
    const api = plain.compose(accessToken({ origins: env.api.httpOrigin, tokens }))

    const first = await get(api, `${env.api.httpOrigin}/reports/1`)
    await tokens.invalidate('default')
    const second = await get(api, `${env.api.httpOrigin}/reports/2`)

    expect([first.status, second.status]).toEqual([200, 200])
    expect(first.json).toMatchObject({ client_id: client.clientId })
    expect(calls).toEqual([
      { tokenUrl: env.httpTokenUrl, issuer: env.issuer, clientId: client.clientId },
      { tokenUrl: env.httpTokenUrl, issuer: env.issuer, clientId: client.clientId },
    ])
    expect(env.grants.map((grant) => grant.status)).toEqual([200, 200])
    expectAssertionClaims(client.clientId, env.httpTokenUrl, 1)
  })

  test('a function that throws: TokenRequestError, nothing sent', async () => {
    const client = env.clients.pkJwt.ES256
    const tokens = new TokenCache({
      fetchToken: clientCredentials({
        tokenUrl: env.httpTokenUrl,
        clientId: client.clientId,
        clientAuth: clientAssertion(() => {
          throw new Error('signing service unavailable')
        }),
      }),
    })

    const error = await rejectionOf(tokens.get())

    expect(error).toBeInstanceOf(TokenRequestError)
    expect(env.grants).toEqual([])
  })
})

describe('federatedTokenFile', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'undici-access-token-federated-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('re-read on every fetch: the rotated token is sent, never the spent one', async () => {
    const client = env.clients.pkJwt.ES256
    const file = join(dir, 'token')
    // As the kubelet writes it, with a trailing newline.
    const firstAssertion = await env.signAssertion(client, env.httpTokenUrl)
    await writeFile(file, `${firstAssertion}\n`)
    const tokens = tokensFor(client.clientId, federatedTokenFile(file))
    const api = plain.compose(accessToken({ origins: env.api.httpOrigin, tokens }))

    const first = await get(api, `${env.api.httpOrigin}/reports/1`)
    // The kubelet rotates the file; the next fetch must send the new one (the server
    // refuses the first assertion's jti a second time).
    const rotated = await env.signAssertion(client, env.httpTokenUrl)
    await writeFile(file, rotated)
    await tokens.invalidate('default')
    const second = await get(api, `${env.api.httpOrigin}/reports/2`)

    expect([first.status, second.status]).toEqual([200, 200])
    expect(env.grants.map((grant) => grant.status)).toEqual([200, 200])
    const [sentFirst, sentSecond] = env.grants.map((grant) => grant.assertion?.payload.jti)
    expect(sentFirst).toBe(
      JSON.parse(Buffer.from(firstAssertion.split('.')[1] ?? '', 'base64url').toString()).jti,
    )
    expect(sentSecond).toBe(
      JSON.parse(Buffer.from(rotated.split('.')[1] ?? '', 'base64url').toString()).jti,
    )
  })

  test('the path from AZURE_FEDERATED_TOKEN_FILE when none is given', async () => {
    const client = env.clients.pkJwt.ES256
    const file = join(dir, 'azure-identity-token')
    await writeFile(file, await env.signAssertion(client, env.httpTokenUrl))
    const saved = process.env.AZURE_FEDERATED_TOKEN_FILE
    process.env.AZURE_FEDERATED_TOKEN_FILE = file
    let clientAuth: ReturnType<typeof federatedTokenFile>
    try {
      clientAuth = federatedTokenFile()
    } finally {
      if (saved === undefined) delete process.env.AZURE_FEDERATED_TOKEN_FILE
      else process.env.AZURE_FEDERATED_TOKEN_FILE = saved
    }
    const tokens = tokensFor(client.clientId, clientAuth)

    expect(await tokens.get()).toMatchObject({ tokenType: 'Bearer' })
    expect(env.grants.map((grant) => [grant.clientId, grant.status])).toEqual([
      [client.clientId, 200],
    ])
  })

  test('a file emptied or removed after start: TokenRequestError, nothing sent', async () => {
    const client = env.clients.pkJwt.ES256
    const file = join(dir, 'token')
    await writeFile(file, await env.signAssertion(client, env.httpTokenUrl))
    const tokens = new TokenCache({
      fetchToken: clientCredentials({
        tokenUrl: env.httpTokenUrl,
        clientId: client.clientId,
        clientAuth: federatedTokenFile(file),
      }),
      backoff: false,
    })

    await writeFile(file, '  \n')
    const empty = await rejectionOf(tokens.get())
    await rm(file)
    const missing = await rejectionOf(tokens.get())

    expect(empty).toBeInstanceOf(TokenRequestError)
    expect(missing).toBeInstanceOf(TokenRequestError)
    expect(env.grants).toEqual([])
  })
})

describe('mTLS (RFC 8705)', () => {
  const bound = (thumbprint: string) => ({ cnf: { 'x5t#S256': thumbprint } })

  test('tls_client_auth: the certificate authenticates (client_id only), the token is bound to it', async () => {
    const { certs } = env
    const tokens = agents.tlsClientTokens(
      { tokenUrl: env.mtlsTokenUrl, clientId: env.clients.tls.clientId },
      certs.ca,
      certs.client,
    )
    const api = agents.authorized({ origins: env.api.httpsOrigin, tokens }, certs.ca, certs.client)

    const answers = [
      await get(api, `${env.api.httpsOrigin}/reports/1`),
      await get(api, `${env.api.httpsOrigin}/reports/2`),
    ]

    expect(answers).toEqual(
      Array(2).fill({
        status: 200,
        json: { kind: 'opaque', client_id: 'tls', ...bound(certs.client.thumbprint) },
      }),
    )
    expect(env.grants).toHaveLength(1)
    expect(env.grants[0]).toMatchObject({
      url: env.mtlsTokenUrl,
      clientId: 'tls',
      status: 200,
      certificate: certs.client.thumbprint,
      params: {},
    })
    // No secret and no assertion: the TLS handshake authenticated the client.
    expect(env.grants[0]?.assertion).toBeUndefined()
    expect(await env.introspect((await tokens.get()).accessToken)).toMatchObject({
      active: true,
      ...bound(certs.client.thumbprint),
    })
  })

  test('the bound token through an agent with another certificate, or none: 401 from the API', async () => {
    const { certs } = env
    // One grant whose token requests present the client certificate; a cache per API agent.
    const fetchToken = clientCredentials({
      tokenUrl: env.mtlsTokenUrl,
      clientId: env.clients.tls.clientId,
      clientAuth: tlsClientAuth(),
      dispatcher: agents.make(certs.ca, certs.client),
    })
    const through = (agent: Agent) =>
      agent.compose(
        accessToken({ origins: env.api.httpsOrigin, tokens: new TokenCache({ fetchToken }) }),
      )

    const same = await get(
      through(agents.make(certs.ca, certs.client)),
      `${env.api.httpsOrigin}/same`,
    )
    const other = await get(
      through(agents.make(certs.ca, certs.other)),
      `${env.api.httpsOrigin}/other`,
    )
    const none = await get(through(agents.make(certs.ca)), `${env.api.httpsOrigin}/none`)

    expect([same.status, other.status, none.status]).toEqual([200, 401, 401])
    // Each 401 is invalid_token: the interceptor renews the token once and retries, and
    // the new token is bound to the token request's certificate again: refused again.
    expect(env.api.hits.map((hit) => [hit.path, hit.outcome, hit.presented])).toEqual([
      ['/same', 'ok', certs.client.thumbprint],
      ['/other', 'unbound', certs.other.thumbprint],
      ['/other', 'unbound', certs.other.thumbprint],
      ['/none', 'unbound', undefined],
      ['/none', 'unbound', undefined],
    ])
    for (const hit of env.api.hits) {
      expect(hit.claims).toMatchObject({ active: true, ...bound(certs.client.thumbprint) })
    }
    expect(env.grants.map((grant) => [grant.status, grant.certificate])).toEqual(
      Array(5).fill([200, certs.client.thumbprint]),
    )
  })

  test('tls_client_auth with a certificate of another subject, or without one: invalid_client', async () => {
    const { certs } = env
    const fetchWith = (identity: KeyAndCertificate | undefined, tokenUrl: string) =>
      agents
        .tlsClientTokens({ tokenUrl, clientId: env.clients.tls.clientId }, certs.ca, identity)
        .get()

    const errors = [
      await rejectionOf(fetchWith(certs.other, env.mtlsTokenUrl)),
      await rejectionOf(fetchWith(undefined, env.mtlsTokenUrl)),
      // Plain HTTP: there is no certificate to present.
      await rejectionOf(fetchWith(certs.client, env.httpTokenUrl)),
    ]

    for (const error of errors) expectRefusedTokenRequest(error, invalidClient, env.secrets)
    expect(env.grants.map((grant) => [grant.clientId, grant.error])).toEqual([
      ['tls', 'invalid_client'],
      ['tls', 'invalid_client'],
      ['tls', 'invalid_client'],
    ])
  })

  test('self_signed_tls_client_auth: a JWT access token bound to the self-signed certificate', async () => {
    const { certs } = env
    const tokens = agents.tlsClientTokens(
      {
        tokenUrl: env.httpsTokenUrl,
        clientId: env.clients.selfSigned.clientId,
        resource: env.resources.https,
        scope: 'read',
      },
      certs.ca,
      certs.selfSigned,
    )
    const reports = `${env.api.httpsOrigin}/reports`

    const answer = await agents.getWithTokens(reports, tokens, certs.ca, certs.selfSigned)
    // Another certificate: the token is bound to the self-signed one.
    const refused = await agents.getWithTokens(reports, tokens, certs.ca, certs.client)

    expect(answer).toEqual({
      status: 200,
      json: {
        kind: 'jwt',
        client_id: 'self-signed',
        scope: 'read',
        aud: env.resources.https,
        ...bound(certs.selfSigned.thumbprint),
      },
    })
    expect(refused.status).toBe(401)
    expect(env.grants[0]).toMatchObject({
      url: env.httpsTokenUrl,
      clientId: 'self-signed',
      status: 200,
      certificate: certs.selfSigned.thumbprint,
    })
    expect(env.api.hits.map((hit) => hit.outcome)).toEqual(['ok', 'unbound', 'unbound'])
  })

  test('self_signed_tls_client_auth with an unregistered certificate: invalid_client', async () => {
    const { certs } = env
    const tokens = agents.tlsClientTokens(
      { tokenUrl: env.httpsTokenUrl, clientId: env.clients.selfSigned.clientId },
      certs.ca,
      certs.client,
    )

    const error = await rejectionOf(tokens.get())

    expectRefusedTokenRequest(error, invalidClient, env.secrets)
  })
})

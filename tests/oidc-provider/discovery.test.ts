// Discovery (RFC 8414, OIDC Discovery) from oidc-provider's metadata: an `issuer` and no
// `tokenUrl`. Over HTTP, and with the issuer on HTTPS (the discovery request goes through
// the grant's dispatcher); `mtls_endpoint_aliases.token_endpoint` (RFC 8705 §5) for
// tlsClientAuth; the exact issuer match (§3.3); the server's list of auth methods.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  clientCredentials,
  clientSecretJwt,
  privateKeyJwt,
  TokenCache,
  TokenRequestError,
} from '../../lib/index.js'
import { expectNoSecrets } from '../support/secrets.js'
import { startServer, type TestServer } from '../support/servers.js'
import { Agents, get, rejectionOf } from './http.js'
import { useStrongEnvironment } from './use-environment.js'

const agents = new Agents()

describe('issuer on HTTP', () => {
  const env = useStrongEnvironment(agents, { issuer: 'http' })

  test('issuer only: the token endpoint from the metadata, discovered once for concurrent fetches', async () => {
    const { clientId, secret } = env.clients.secretJwt
    const fetchToken = clientCredentials({
      issuer: env.issuer,
      clientId,
      clientAuth: clientSecretJwt(secret),
    })
    // Two caches (two keys' worth of tokens) sharing one grant: both fetch at once.
    const readers = agents.authorized(
      { origins: env.api.httpOrigin, tokens: new TokenCache({ fetchToken }) },
      env.certs.ca,
    )
    const writers = agents.authorized(
      { origins: env.api.httpOrigin, tokens: new TokenCache({ fetchToken }) },
      env.certs.ca,
    )

    const answers = await Promise.all([
      ...Array.from({ length: 4 }, (_, i) => get(readers, `${env.api.httpOrigin}/reports/r${i}`)),
      ...Array.from({ length: 4 }, (_, i) => get(writers, `${env.api.httpOrigin}/reports/w${i}`)),
    ])

    expect(answers.map((answer) => answer.status)).toEqual(Array(8).fill(200))
    expect(answers[0]?.json).toMatchObject({ client_id: clientId })
    // RFC 8414 §3.1 first; oidc-provider serves it, so OIDC Discovery is not needed.
    expect(env.discoveryRequests).toEqual([
      `${env.httpOrigin}/.well-known/oauth-authorization-server`,
    ])
    expect(env.grants.map((grant) => [grant.url, grant.status])).toEqual([
      [env.httpTokenUrl, 200],
      [env.httpTokenUrl, 200],
    ])
    // The default audience is the discovered token endpoint.
    for (const grant of env.grants) expect(grant.assertion?.payload.aud).toBe(env.httpTokenUrl)
  })

  test("audience 'issuer' with a discovered endpoint: aud is the issuer", async () => {
    const client = env.clients.pkJwt.ES256
    const tokens = new TokenCache({
      fetchToken: clientCredentials({
        issuer: env.issuer,
        clientId: client.clientId,
        clientAuth: privateKeyJwt({ key: client.privateKey, kid: client.kid, audience: 'issuer' }),
      }),
    })

    expect(await tokens.get()).toMatchObject({ tokenType: 'Bearer' })
    expect(env.grants).toHaveLength(1)
    expect(env.grants[0]).toMatchObject({ url: env.httpTokenUrl, status: 200 })
    expect(env.grants[0]?.assertion?.payload.aud).toBe(env.issuer)
  })

  test('tlsClientAuth: the mTLS alias from mtls_endpoint_aliases, a certificate-bound token', async () => {
    const { certs } = env
    const tokens = agents.tlsClientTokens(
      { issuer: env.issuer, clientId: env.clients.tls.clientId },
      certs.ca,
      certs.client,
    )
    const answer = await agents.getWithTokens(
      `${env.api.httpsOrigin}/reports`,
      tokens,
      certs.ca,
      certs.client,
    )

    expect(answer).toEqual({
      status: 200,
      json: { kind: 'opaque', client_id: 'tls', cnf: { 'x5t#S256': certs.client.thumbprint } },
    })
    expect(env.discoveryRequests).toHaveLength(1)
    expect(env.grants.map((grant) => [grant.url, grant.status])).toEqual([[env.mtlsTokenUrl, 200]])
  })

  test('the issuer must match exactly (RFC 8414 §3.3): a trailing slash is another issuer; nothing sent', async () => {
    const { clientId, secret } = env.clients.secretJwt
    const tokens = new TokenCache({
      fetchToken: clientCredentials({
        issuer: `${env.issuer}/`,
        clientId,
        clientAuth: clientSecretJwt(secret),
      }),
    })

    const error = await rejectionOf(tokens.get())

    expect(error).toBeInstanceOf(TokenRequestError)
    expect((error as Error).message).toContain('RFC 8414 §3.3')
    expectNoSecrets(error, env.secrets)
    expect(env.grants).toEqual([])
  })

  describe('metadata served by another origin', () => {
    let metadataServer: TestServer & { handle: unknown }
    let served: Record<string, unknown> = {}

    beforeAll(async () => {
      metadataServer = await startServer((req, res) => {
        if (req.method === 'GET' && req.url?.startsWith('/.well-known/')) {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(served))
          return
        }
        res.writeHead(404).end()
      })
    })
    afterAll(async () => {
      await metadataServer?.close()
    })

    /** The provider's document, with `changes`. */
    async function serve(changes: Record<string, unknown>) {
      const response = await request(`${env.httpOrigin}/.well-known/oauth-authorization-server`)
      served = { ...((await response.body.json()) as Record<string, unknown>), ...changes }
    }

    test('a document naming another issuer is not used: TokenRequestError, nothing sent', async () => {
      await serve({})
      const { clientId, secret } = env.clients.secretJwt
      const tokens = new TokenCache({
        fetchToken: clientCredentials({
          issuer: metadataServer.origin,
          clientId,
          clientAuth: clientSecretJwt(secret),
        }),
      })

      const error = await rejectionOf(tokens.get())

      expect(error).toBeInstanceOf(TokenRequestError)
      expect((error as Error).message).toContain(metadataServer.origin)
      expect(env.grants).toEqual([])
    })

    test('a method the server does not list: a clear error, nothing sent; the failure is not kept', async () => {
      const { clientId, secret } = env.clients.secretJwt
      // One grant throughout; no backoff, so the second get() asks again at once.
      const tokens = new TokenCache({
        fetchToken: clientCredentials({
          issuer: metadataServer.origin,
          clientId,
          clientAuth: clientSecretJwt(secret),
        }),
        backoff: false,
      })

      await serve({
        issuer: metadataServer.origin,
        token_endpoint_auth_methods_supported: ['private_key_jwt', 'tls_client_auth'],
      })
      const error = await rejectionOf(tokens.get())
      expect(env.grants).toEqual([])
      // The document changes to list it: the same grant discovers again and gets its
      // token from the provider's token endpoint the document names.
      await serve({
        issuer: metadataServer.origin,
        token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_jwt'],
      })
      const token = await tokens.get()

      expect(error).toBeInstanceOf(TokenRequestError)
      expect((error as Error).message).toContain('client_secret_jwt')
      expectNoSecrets(error, env.secrets)
      expect(token).toMatchObject({ tokenType: 'Bearer' })
      expect(env.grants.map((grant) => [grant.url, grant.clientId, grant.status])).toEqual([
        [env.httpTokenUrl, clientId, 200],
      ])
    })

    test('tlsClientAuth() at a server that lists only self_signed_tls_client_auth: the alias, a token', async () => {
      // tlsClientAuth() is both RFC 8705 methods (the same on the wire, §2.1/§2.2): a
      // self-signed client must not be refused because the server's list lacks tls_client_auth.
      const { certs } = env
      await serve({
        issuer: metadataServer.origin,
        token_endpoint_auth_methods_supported: ['private_key_jwt', 'self_signed_tls_client_auth'],
      })
      const tokens = agents.tlsClientTokens(
        { issuer: metadataServer.origin, clientId: env.clients.selfSigned.clientId },
        certs.ca,
        certs.selfSigned,
      )
      const answer = await agents.getWithTokens(
        `${env.api.httpsOrigin}/reports`,
        tokens,
        certs.ca,
        certs.selfSigned,
      )

      expect(answer).toMatchObject({
        status: 200,
        json: { client_id: 'self-signed', cnf: { 'x5t#S256': certs.selfSigned.thumbprint } },
      })
      expect(env.grants.map((grant) => [grant.url, grant.status])).toEqual([
        [env.mtlsTokenUrl, 200],
      ])
    })
  })
})

describe('issuer on HTTPS', () => {
  const env = useStrongEnvironment(agents, { issuer: 'https' })

  test('private_key_jwt: discovered through the dispatcher (which trusts the CA)', async () => {
    const client = env.clients.pkJwt.EdDSA
    const tokens = new TokenCache({
      fetchToken: clientCredentials({
        issuer: env.issuer,
        clientId: client.clientId,
        clientAuth: privateKeyJwt({ key: client.pem, kid: client.kid }),
        dispatcher: agents.make(env.certs.ca),
      }),
    })
    const api = agents.authorized({ origins: env.api.httpOrigin, tokens }, env.certs.ca)

    const answer = await get(api, `${env.api.httpOrigin}/reports`)

    expect(answer).toMatchObject({
      status: 200,
      json: { kind: 'opaque', client_id: client.clientId },
    })
    expect(env.discoveryRequests).toEqual([
      `${env.httpsOrigin}/.well-known/oauth-authorization-server`,
    ])
    expect(env.grants.map((grant) => [grant.url, grant.status])).toEqual([[env.httpsTokenUrl, 200]])
    expect(env.grants[0]?.assertion?.payload.aud).toBe(env.httpsTokenUrl)
  })

  test('self_signed_tls_client_auth: the mTLS alias, a token bound to the self-signed certificate', async () => {
    const { certs } = env
    const tokens = agents.tlsClientTokens(
      { issuer: env.issuer, clientId: env.clients.selfSigned.clientId },
      certs.ca,
      certs.selfSigned,
    )
    const reports = `${env.api.httpsOrigin}/reports`

    const answer = await agents.getWithTokens(reports, tokens, certs.ca, certs.selfSigned)
    // Another certificate: the token is bound to the self-signed one.
    const refused = await agents.getWithTokens(reports, tokens, certs.ca, certs.other)

    expect(answer).toEqual({
      status: 200,
      json: {
        kind: 'opaque',
        client_id: 'self-signed',
        cnf: { 'x5t#S256': certs.selfSigned.thumbprint },
      },
    })
    expect(refused.status).toBe(401)
    expect(env.discoveryRequests).toHaveLength(1)
    expect(
      env.grants.every((grant) => grant.url === env.mtlsTokenUrl && grant.status === 200),
    ).toBe(true)
  })

  test('without a dispatcher that trusts the CA, discovery fails: TokenRequestError, nothing sent', async () => {
    const client = env.clients.pkJwt.ES256
    const tokens = new TokenCache({
      fetchToken: clientCredentials({
        issuer: env.issuer,
        clientId: client.clientId,
        clientAuth: privateKeyJwt({ key: client.privateKey, kid: client.kid }),
      }),
    })

    const error = await rejectionOf(tokens.get())

    expect(error).toBeInstanceOf(TokenRequestError)
    expectNoSecrets(error, env.secrets)
    expect(env.discoveryRequests).toEqual([])
    expect(env.grants).toEqual([])
  })
})

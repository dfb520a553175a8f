// Token exchange (RFC 8693) and the JWT bearer grant (RFC 7523 §2.1) against
// oidc-provider, through grant handlers registered on it (mtls-provider.ts): the subject
// token is one of the provider's own access tokens or a workload identity JWT; the API
// checks what it gets back (introspection, or jose for a JWT).
import { decodeJwt } from 'jose'
import { describe, expect, test } from 'vitest'
import {
  clientCredentials,
  clientSecretPost,
  jwtBearer,
  privateKeyJwt,
  TokenCache,
  TokenRequestError,
  tokenExchange,
} from '../../lib/index.js'
import { Agents, expectRefusedTokenRequest, get, rejection, rejectionOf } from './http.js'
import { JWT_BEARER, TOKEN_EXCHANGE, TOKEN_TYPE } from './mtls-provider.js'
import { useStrongEnvironment } from './use-environment.js'

const agents = new Agents()
const env = useStrongEnvironment(agents)

/** How the token endpoint refuses a subject token or assertion it does not accept (RFC 6749 §5.2). */
const invalidGrant = { status: 400, error: 'invalid_grant' }

/** The exchanging client's authentication: private_key_jwt, ES256. */
function exchangerAuth() {
  const { privateKey, kid } = env.clients.exchanger
  return privateKeyJwt({ key: privateKey, kid })
}

/** A TokenCache of the client whose tokens are exchanged (client_secret_basic). */
function subjectTokens() {
  const { clientId, clientSecret } = env.clients.subjectSource
  return new TokenCache({
    fetchToken: clientCredentials({ tokenUrl: env.httpTokenUrl, clientId, clientSecret }),
  })
}

describe('token exchange (RFC 8693)', () => {
  test('an access token of another client exchanged, got afresh by a function on each fetch', async () => {
    const subject = subjectTokens()
    const subjectCalls: AbortSignal[] = []
    const tokens = new TokenCache({
      fetchToken: tokenExchange({
        tokenUrl: env.httpTokenUrl,
        clientId: env.clients.exchanger.clientId,
        clientAuth: exchangerAuth(),
        subjectToken: async ({ signal }) => {
          subjectCalls.push(signal)
          return (await subject.get()).accessToken
        },
        subjectTokenType: TOKEN_TYPE.accessToken,
        scope: 'read',
      }),
    })
    const api = agents.authorized({ origins: env.api.httpOrigin, tokens }, env.certs.ca)

    const answers = [
      await get(api, `${env.api.httpOrigin}/reports/1`),
      await get(api, `${env.api.httpOrigin}/reports/2`),
    ]
    await tokens.invalidate('default')
    answers.push(await get(api, `${env.api.httpOrigin}/reports/3`))

    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200])
    expect(answers[0]?.json).toEqual({
      kind: 'opaque',
      client_id: 'exchanger',
      scope: 'read',
      exchanged_sub: 'client:subject-source',
    })
    // One subject token (cached by its own TokenCache), two exchanges.
    expect(subjectCalls).toHaveLength(2)
    for (const signal of subjectCalls) expect(signal).toBeInstanceOf(AbortSignal)
    expect(env.grants.map((grant) => [grant.clientId, grant.grantType, grant.status])).toEqual([
      ['subject-source', 'client_credentials', 200],
      ['exchanger', TOKEN_EXCHANGE, 200],
      ['exchanger', TOKEN_EXCHANGE, 200],
    ])
    expect(env.grants[1]?.params).toEqual({
      subject_token_type: TOKEN_TYPE.accessToken,
      scope: 'read',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    })
    // issued_token_type stays on the token, under its wire name.
    const token = await tokens.get()
    expect(token).toMatchObject({
      tokenType: 'Bearer',
      scope: 'read',
      issued_token_type: TOKEN_TYPE.accessToken,
    })
  })

  test('a workload JWT for a JWT access token for an audience, with an actor token', async () => {
    const subjectJwt = await env.workload.sign({ sub: 'system:serviceaccount:reports:exporter' })
    const tokens = new TokenCache({
      fetchToken: tokenExchange({
        tokenUrl: env.httpTokenUrl,
        issuer: env.issuer,
        clientId: env.clients.exchanger.clientId,
        clientAuth: exchangerAuth(),
        subjectToken: subjectJwt,
        subjectTokenType: TOKEN_TYPE.jwt,
        actorToken: () => env.workload.sign({ sub: 'spiffe://cluster/ns/reports/sa/gateway' }),
        actorTokenType: TOKEN_TYPE.jwt,
        requestedTokenType: TOKEN_TYPE.jwt,
        audience: env.resources.http,
        scope: ['read', 'write'],
      }),
    })
    const api = agents.authorized({ origins: env.api.httpOrigin, tokens }, env.certs.ca)

    const answer = await get(api, `${env.api.httpOrigin}/reports`)

    expect(answer).toEqual({
      status: 200,
      json: {
        kind: 'jwt',
        client_id: 'exchanger',
        scope: 'read write',
        aud: env.resources.http,
        exchanged_sub: 'system:serviceaccount:reports:exporter',
        act: { sub: 'spiffe://cluster/ns/reports/sa/gateway' },
      },
    })
    expect(env.grants[0]).toMatchObject({
      grantType: TOKEN_EXCHANGE,
      status: 200,
      issuedTokenType: TOKEN_TYPE.jwt,
      params: {
        subject_token_type: TOKEN_TYPE.jwt,
        actor_token_type: TOKEN_TYPE.jwt,
        requested_token_type: TOKEN_TYPE.jwt,
        audience: env.resources.http,
        scope: 'read write',
      },
    })
    expect(await tokens.get()).toMatchObject({ issued_token_type: TOKEN_TYPE.jwt, expiresIn: 300 })
  })

  test('an ID token asked for: token_type N_A, kept as such with its issued_token_type (TokenCache)', async () => {
    const subject = subjectTokens()
    const tokens = new TokenCache({
      fetchToken: tokenExchange({
        tokenUrl: env.httpTokenUrl,
        clientId: env.clients.exchanger.clientId,
        clientAuth: exchangerAuth(),
        subjectToken: async () => (await subject.get()).accessToken,
        subjectTokenType: TOKEN_TYPE.accessToken,
        requestedTokenType: TOKEN_TYPE.idToken,
      }),
    })

    const token = await tokens.get()

    expect(token).toMatchObject({
      tokenType: 'N_A',
      issued_token_type: TOKEN_TYPE.idToken,
      expiresIn: 300,
    })
    expect(decodeJwt(token.accessToken)).toMatchObject({
      iss: env.workload.issuer,
      sub: 'client:subject-source',
      aud: 'exchanger',
    })
    expect(env.grants.at(-1)).toMatchObject({
      grantType: TOKEN_EXCHANGE,
      status: 200,
      issuedTokenType: TOKEN_TYPE.idToken,
      params: { requested_token_type: TOKEN_TYPE.idToken },
    })
  })

  test('a subject token the server does not accept: invalid_grant; no token in the error, nothing reaches the API', async () => {
    // Signed by the workload issuer, but for another audience.
    const foreign = await env.workload.sign({ sub: 'someone', aud: 'https://elsewhere.example' })
    const api = agents.authorized(
      {
        origins: env.api.httpOrigin,
        fetchToken: tokenExchange({
          tokenUrl: env.httpTokenUrl,
          clientId: env.clients.exchanger.clientId,
          clientAuth: exchangerAuth(),
          subjectToken: foreign,
          subjectTokenType: TOKEN_TYPE.jwt,
        }),
      },
      env.certs.ca,
    )

    const error = await rejection(api, `${env.api.httpOrigin}/reports`)

    expectRefusedTokenRequest(error, invalidGrant, [...env.secrets, foreign])
    expect(env.api.hits).toEqual([])
  })

  test('a subject token function that fails: TokenRequestError, nothing sent', async () => {
    const tokens = new TokenCache({
      fetchToken: tokenExchange({
        tokenUrl: env.httpTokenUrl,
        clientId: env.clients.exchanger.clientId,
        clientAuth: exchangerAuth(),
        subjectToken: async () => {
          throw new Error('token file unreadable')
        },
        subjectTokenType: TOKEN_TYPE.jwt,
      }),
    })

    const error = await rejectionOf(tokens.get())

    expect(error).toBeInstanceOf(TokenRequestError)
    expect(env.grants).toEqual([])
  })
})

describe('JWT bearer grant (RFC 7523 §2.1)', () => {
  test('a fresh workload assertion on every fetch, exchanged by a client_secret_post client', async () => {
    const { clientId, clientSecret } = env.clients.bearer
    let assertions = 0
    const tokens = new TokenCache({
      fetchToken: jwtBearer({
        tokenUrl: env.httpTokenUrl,
        clientId,
        clientAuth: clientSecretPost(clientSecret),
        // The server takes each assertion's jti once: a second fetch needs a new one.
        assertion: () => {
          assertions++
          return env.workload.sign({ sub: 'svc-nightly-export', aud: env.httpTokenUrl })
        },
        scope: 'read',
      }),
    })
    const api = agents.authorized({ origins: env.api.httpOrigin, tokens }, env.certs.ca)

    const first = await get(api, `${env.api.httpOrigin}/reports/1`)
    await tokens.invalidate('default')
    const second = await get(api, `${env.api.httpOrigin}/reports/2`)

    // Both answers alike: each token says which assertion subject it was issued for.
    expect([first, second]).toEqual(
      Array(2).fill({
        status: 200,
        json: {
          kind: 'opaque',
          client_id: clientId,
          scope: 'read',
          assertion_sub: 'svc-nightly-export',
        },
      }),
    )
    expect(assertions).toBe(2)
    expect(env.grants.map((grant) => [grant.grantType, grant.status])).toEqual([
      [JWT_BEARER, 200],
      [JWT_BEARER, 200],
    ])
  })

  test('an expired assertion: invalid_grant, the assertion nowhere in the error', async () => {
    const { clientId, clientSecret } = env.clients.bearer
    const expired = await env.workload.sign({ sub: 'svc-nightly-export', expiresIn: -120 })
    const tokens = new TokenCache({
      fetchToken: jwtBearer({
        tokenUrl: env.httpTokenUrl,
        clientId,
        clientAuth: clientSecretPost(clientSecret),
        assertion: expired,
      }),
    })

    const error = await rejectionOf(tokens.get())

    expectRefusedTokenRequest(error, invalidGrant, [...env.secrets, expired])
  })
})

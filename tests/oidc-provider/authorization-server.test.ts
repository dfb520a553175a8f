// The package against a real authorization server: oidc-provider on 127.0.0.1,
// and an API that checks its tokens as a resource server does (JWTs with jose
// against the provider's JWKS, opaque tokens by introspection). See provider.ts.
import { Agent, type Dispatcher } from 'undici'
import { beforeEach, describe, expect, test } from 'vitest'
import {
  accessToken,
  type ClientCredentialsOptions,
  clientCredentials,
  TokenCache,
  TokenRequestError,
} from '../../lib/index.js'
import { expectNoSecrets } from '../helpers/secrets.js'
import { builtinFetch } from '../helpers/servers.js'
import {
  type ApiAnswer,
  expectRefusedTokenRequest,
  get as getUrl,
  rejection as rejectionOfUrl,
} from './http.js'
import { type Client, clientWith, startOidcEnvironment } from './provider.js'
import { useEnvironment } from './use-environment.js'

// A fresh provider for each test: the revocation and fail-closed tests leave state behind.
const env = useEnvironment(startOidcEnvironment, {
  per: 'test',
  cleanUp: () => agent.close(),
})
let agent: Agent

beforeEach(() => {
  agent = new Agent({ keepAliveTimeout: 10_000 })
})

/** clientCredentials() for one of the provider's clients. */
function grant(client: Client, extra: Partial<ClientCredentialsOptions> = {}) {
  return clientCredentials({
    tokenUrl: env.tokenUrl,
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    authMethod: client.authMethod,
    ...extra,
  })
}

/** An agent whose requests to the API carry tokens from `options`. */
function authorized(options: Parameters<typeof accessToken>[0]): Dispatcher {
  return agent.compose(accessToken(options))
}

/** GET `path` of the API: the status, and the body when 200. */
function get(dispatcher: Dispatcher, path: string): Promise<ApiAnswer> {
  return getUrl(dispatcher, `${env.api.origin}${path}`)
}

/** What a request for `path` of the API that could not get a token rejects with. */
function rejection(dispatcher: Dispatcher, path: string): Promise<unknown> {
  return rejectionOfUrl(dispatcher, `${env.api.origin}${path}`)
}

describe('client authentication', () => {
  test('client_secret_basic: an opaque token the API accepts by introspection, fetched once', async () => {
    const api = authorized({ origins: env.api.origin, fetchToken: grant(env.basicClient) })

    const answers = []
    for (let i = 0; i < 5; i++) answers.push(await get(api, `/reports/${i}`))

    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200])
    expect(answers[0]?.json).toMatchObject({ kind: 'opaque', client_id: 'svc-basic' })
    expect(env.tokenRequests).toBe(1)
    expect(env.grants).toEqual([
      { clientId: 'svc-basic', status: 200, accessToken: expect.any(String) },
    ])
    expect(env.api.hits.map((hit) => hit.outcome)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok'])
  })

  test('client_secret_post: the same through fetch', async () => {
    const api = authorized({ origins: env.api.origin, fetchToken: grant(env.postClient) })

    const statuses = []
    let body: unknown
    for (let i = 0; i < 3; i++) {
      const response = await builtinFetch(`${env.api.origin}/reports/${i}`, { dispatcher: api })
      statuses.push(response.status)
      body = await response.json()
    }

    expect(statuses).toEqual([200, 200, 200])
    expect(body).toMatchObject({ kind: 'opaque', client_id: 'svc-post' })
    expect(env.tokenRequests).toBe(1)
    expect(env.grants).toEqual([
      { clientId: 'svc-post', status: 200, accessToken: expect.any(String) },
    ])
  })

  test('a client the server does not know is invalid_client; nothing reaches the API', async () => {
    const stranger = { ...env.basicClient, clientId: 'svc-unknown' }
    const api = authorized({ origins: env.api.origin, fetchToken: grant(stranger) })

    const error = await rejection(api, '/reports')

    expectRefusedTokenRequest(
      error,
      { status: 401, error: 'invalid_client' },
      env.basicClient.secretForms,
    )
    expect(env.api.hits).toEqual([])
  })
})

describe('scopes', () => {
  test('the token carries the scopes asked for (a string or an array)', async () => {
    const readOnly = authorized({
      origins: env.api.origin,
      fetchToken: grant(env.basicClient, { scope: 'read' }),
    })
    const readWrite = new Agent().compose(
      accessToken({
        origins: env.api.origin,
        fetchToken: grant(env.postClient, { scope: ['read', 'write'] }),
      }),
    )

    try {
      const [read, both] = await Promise.all([
        get(readOnly, '/reports'),
        get(readWrite, '/reports'),
      ])

      expect(read).toEqual({
        status: 200,
        json: { kind: 'opaque', client_id: 'svc-basic', scope: 'read' },
      })
      expect(both).toEqual({
        status: 200,
        json: { kind: 'opaque', client_id: 'svc-post', scope: 'read write' },
      })
      expect(env.tokenRequests).toBe(2)
    } finally {
      await readWrite.close()
    }
  })

  test('a scope the client may not have is invalid_scope; nothing reaches the API', async () => {
    const api = authorized({
      origins: env.api.origin,
      fetchToken: grant(env.basicClient, { scope: ['read', 'admin'] }),
    })

    const error = await rejection(api, '/reports')

    expectRefusedTokenRequest(
      error,
      { status: 400, error: 'invalid_scope' },
      env.basicClient.secretForms,
    )
    expect(env.api.hits).toEqual([])
    expect(env.grants).toEqual([{ clientId: 'svc-basic', status: 400, error: 'invalid_scope' }])
  })
})

describe('resource indicators (RFC 8707)', () => {
  test('a resource gets a JWT access token for that audience, verified against the JWKS', async () => {
    const tokens = new TokenCache({
      fetchToken: grant(env.postClient, { resource: env.resources.reports, scope: 'read' }),
    })
    const api = authorized({ origins: env.api.origin, tokens })

    const answers = [await get(api, '/reports/1'), await get(api, '/reports/2')]

    expect(answers).toEqual(
      Array(2).fill({
        status: 200,
        json: { kind: 'jwt', client_id: 'svc-post', scope: 'read', aud: env.resources.reports },
      }),
    )
    expect(env.tokenRequests).toBe(1)
    const token = await tokens.get()
    expect(token).toMatchObject({ tokenType: 'Bearer', expiresIn: 300, scope: 'read' })
    expect(env.api.hits[0]?.claims).toMatchObject({
      iss: env.issuer,
      aud: env.resources.reports,
      client_id: 'svc-post',
    })
    // The cache never keeps a token past the JWT's own exp (which oidc-provider floors
    // to the second, up to 1 s before its expires_in ends).
    const exp = env.api.hits[0]?.claims?.exp as number
    expect(token.expiresAt).toBeLessThanOrEqual(exp * 1000)
  })

  test('a resource the server does not know is invalid_target; nothing reaches the API', async () => {
    const api = authorized({
      origins: env.api.origin,
      fetchToken: grant(env.basicClient, { resource: `${env.api.origin}/unknown` }),
    })

    const error = await rejection(api, '/reports')

    expectRefusedTokenRequest(
      error,
      { status: 400, error: 'invalid_target' },
      env.basicClient.secretForms,
    )
    expect(env.api.hits).toEqual([])
  })
})

describe('fail closed', () => {
  test.each([
    ['client_secret_basic', () => env.basicClient],
    ['client_secret_post', () => env.postClient],
  ])(
    'a wrong %s secret is invalid_client: TokenRequestError, no secret in it, nothing sent',
    async (_, registered) => {
      const { clientId, clientSecret, authMethod } = registered()
      const wrong = clientWith(clientId, `${clientSecret}-wrong`, authMethod)
      // No backoff, so the fetch below asks the server again rather than getting the
      // first failure back from the backoff window.
      const api = authorized({ origins: env.api.origin, fetchToken: grant(wrong), backoff: false })

      const error = await rejection(api, '/reports')
      const fetchError = await builtinFetch(`${env.api.origin}/reports`, { dispatcher: api }).then(
        () => undefined,
        (thrown: unknown) => thrown,
      )

      expect(error).toBeInstanceOf(TokenRequestError)
      expect(error).toMatchObject({ status: 401, error: 'invalid_client' })
      // fetch: TypeError('fetch failed') whose cause is the TokenRequestError.
      expect(fetchError).toBeInstanceOf(TypeError)
      expect((fetchError as Error).cause).toBeInstanceOf(TokenRequestError)
      expect((fetchError as Error).cause).toMatchObject({ status: 401, error: 'invalid_client' })
      const secrets = [...registered().secretForms, ...wrong.secretForms]
      expectNoSecrets(error, secrets)
      expectNoSecrets(fetchError, secrets)
      expect(env.api.hits).toEqual([])
      expect(env.grants).toEqual([
        { clientId, status: 401, error: 'invalid_client' },
        { clientId, status: 401, error: 'invalid_client' },
      ])
    },
  )

  test('TokenCache.get() rejects the same way without HTTP around it', async () => {
    const wrong = clientWith(
      env.basicClient.clientId,
      'not-the-secret-at-all',
      'client_secret_basic',
    )
    const tokens = new TokenCache({ fetchToken: grant(wrong) })

    const error = await tokens.get().catch((thrown: unknown) => thrown)

    expectRefusedTokenRequest(error, { status: 401, error: 'invalid_client' }, [
      ...env.basicClient.secretForms,
      ...wrong.secretForms,
    ])
  })
})

describe('revocation', () => {
  test('a token revoked mid-run: 401 invalid_token, exactly one renewal, every caller gets 200', async () => {
    const tokens = new TokenCache({ fetchToken: grant(env.basicClient, { scope: 'read' }) })
    const api = authorized({ origins: env.api.origin, tokens })
    const waves = 8
    const perWave = 4
    const revokeBefore = 3

    const statuses: number[] = []
    let revoked: string | undefined
    for (let wave = 0; wave < waves; wave++) {
      if (wave === revokeBefore) {
        revoked = (await tokens.get()).accessToken
        await env.revoke(revoked, env.basicClient)
        expect(await env.introspect(revoked)).toMatchObject({ active: false })
      }
      const answers = await Promise.all(
        Array.from({ length: perWave }, (_, i) => get(api, `/reports/${wave}-${i}`)),
      )
      statuses.push(...answers.map((answer) => answer.status))
    }

    expect(statuses).toEqual(Array(waves * perWave).fill(200))
    // One token before the revocation, exactly one after.
    expect(env.tokenRequests).toBe(2)
    expect(env.grants.map((g) => g.status)).toEqual([200, 200])
    const [first, second] = env.grants.map((g) => g.accessToken)
    expect(first).toBe(revoked)
    expect(second).not.toBe(revoked)
    // The whole wave sent right after the revocation carried the revoked (still cached)
    // token and met 401s; each of those requests was sent once more with the new token.
    const refused = env.api.hits.filter((hit) => hit.outcome !== 'ok')
    expect(refused).toHaveLength(perWave)
    for (const hit of refused) expect(hit).toMatchObject({ outcome: 'inactive', token: revoked })
    expect(env.api.hits).toHaveLength(waves * perWave + refused.length)
    const used = new Set(env.api.hits.filter((hit) => hit.outcome === 'ok').map((h) => h.token))
    expect(used).toEqual(new Set([first, second]))
  })
})

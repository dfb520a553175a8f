// Grants on the one token-request core (issue #12): token exchange (RFC 8693) and the
// JWT bearer grant (RFC 7523 §2.1) beside clientCredentials, with the option handling
// they share (GrantOptions). Real node:http servers on 127.0.0.1.
import { Agent, request } from 'undici'
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import {
  AccessTokenError,
  AccessTokenErrorCode,
  accessToken,
  clientCredentials,
  type FetchToken,
  jwtBearer,
  TokenCache,
  TokenRequestError,
  tokenExchange,
} from '../lib/index.js'
import type { ClientAuth, ClientAuthRequest } from '../lib/oauth/client-auth.js'
import { rejectionOf } from './support/async.js'
import { registerSecret } from './support/secret-registry.js'
import { expectNoSecrets } from './support/secrets.js'
import { startApi, startTokenEndpoint, type TokenEndpoint } from './support/servers.js'

const tokenExchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange'
const jwtBearerGrant = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const jwtType = 'urn:ietf:params:oauth:token-type:jwt'
const accessTokenType = 'urn:ietf:params:oauth:token-type:access_token'
const idTokenType = 'urn:ietf:params:oauth:token-type:id_token'

const clientId = 'exchanger'
const clientSecret = 'exchanger-secret-7f3e1d'
registerSecret(clientSecret)

/** A secret with every character class an encoding changes, and a made-up JWT shape. */
function secretValue(name: string, n = 1): string {
  const value = `${name}.eyJzdWIiOiJ3b3JrbG9hZC0${n}In0.s1g+n/a=t üre "${n}"`
  registerSecret(value)
  return value
}

/** Every form a value may be echoed back in. */
function echoedForms(value: string): string[] {
  return [
    value,
    new URLSearchParams({ v: value }).toString().slice(2),
    encodeURIComponent(value),
    JSON.stringify(value).slice(1, -1),
  ]
}

let endpoint: TokenEndpoint

beforeEach(async () => {
  endpoint = await startTokenEndpoint()
})

afterEach(async () => {
  await endpoint.close()
})

/** The form of the n-th token request (from 1). */
function formOf(n: number): URLSearchParams {
  const received = endpoint.requests[n - 1]
  if (received === undefined) throw new Error(`no token request #${n}`)
  return new URLSearchParams(received.body)
}

/** Answers every token request with an error whose description echoes the whole request. */
function echoRequests(): void {
  endpoint.respond = (n) => {
    const body = endpoint.requests[n - 1]?.body ?? ''
    const form = new URLSearchParams(body)
    return {
      status: 400,
      body: {
        error: 'invalid_grant',
        error_description: `bad request ${body} | ${JSON.stringify([...form])} | ${[...form.values()].join(' ')}`,
        error_uri: `https://as.example/errors?${body}`,
      },
    }
  }
}

/** This file's confidential client, at the current test's token endpoint. */
function client(): { tokenUrl: string; clientId: string; clientSecret: string } {
  return { tokenUrl: endpoint.tokenUrl, clientId, clientSecret }
}

/** An API and an Agent to reach it with, both closed when the current test ends. */
async function apiForThisTest(options?: Parameters<typeof startApi>[0]) {
  const api = await startApi(options)
  const agent = new Agent()
  onTestFinished(async () => {
    await agent.close()
    await api.close()
  })
  return { api, agent }
}

function basicCredentials(): string {
  return `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`
}

describe('tokenExchange() (RFC 8693)', () => {
  it('sends the RFC 8693 §2.1 form with the client authentication, through TokenCache', async () => {
    const subject = secretValue('subject')
    const actor = secretValue('actor')
    const tokens = new TokenCache({
      fetchToken: tokenExchange({
        ...client(),
        subjectToken: subject,
        subjectTokenType: jwtType,
        actorToken: actor,
        actorTokenType: accessTokenType,
        requestedTokenType: accessTokenType,
        scope: ['read', 'write'],
        audience: 'https://backend.example',
        resource: ['https://api.example/a', 'https://api.example/b'],
        extraParams: { tenant: 't1' },
      }),
    })
    const token = await tokens.get()
    expect(token.accessToken).toBe('token-1')
    const form = formOf(1)
    expect([...form]).toEqual([
      ['grant_type', tokenExchangeGrant],
      ['subject_token', subject],
      ['subject_token_type', jwtType],
      ['actor_token', actor],
      ['actor_token_type', accessTokenType],
      ['requested_token_type', accessTokenType],
      ['scope', 'read write'],
      ['audience', 'https://backend.example'],
      ['resource', 'https://api.example/a'],
      ['resource', 'https://api.example/b'],
      ['tenant', 't1'],
    ])
    expect(endpoint.requests[0]?.headers.authorization).toBe(basicCredentials())
    expect(endpoint.requests[0]?.headers['content-type']).toBe('application/x-www-form-urlencoded')
  })

  it('leaves out actor_token_type and requested_token_type when not configured', async () => {
    const fetchToken = tokenExchange({
      ...client(),
      subjectToken: 'plain-subject-token',
      subjectTokenType: accessTokenType,
    })
    await new TokenCache({ fetchToken }).get()
    expect([...formOf(1).keys()]).toEqual(['grant_type', 'subject_token', 'subject_token_type'])
  })

  it('calls the subject and actor token functions on every fetch, with the fetch signal', async () => {
    let subjects = 0
    let actors = 0
    const signals: unknown[] = []
    const tokens = new TokenCache({
      fetchToken: tokenExchange({
        ...client(),
        subjectToken: async ({ signal }) => {
          signals.push(signal)
          subjects++
          return `projected-token-${subjects}`
        },
        subjectTokenType: jwtType,
        actorToken: ({ signal }) => {
          signals.push(signal)
          actors++
          return `actor-token-${actors}`
        },
        actorTokenType: jwtType,
      }),
    })
    await tokens.get('a')
    await tokens.get('b')
    await tokens.get('a') // cached: no fetch, no call
    expect(subjects).toBe(2)
    expect(actors).toBe(2)
    expect(formOf(1).get('subject_token')).toBe('projected-token-1')
    expect(formOf(2).get('subject_token')).toBe('projected-token-2')
    expect(formOf(2).get('actor_token')).toBe('actor-token-2')
    for (const signal of signals) expect(signal).toBeInstanceOf(AbortSignal)
  })

  it('keeps issued_token_type (and every other extra field) on the token under its wire name', async () => {
    endpoint.respond = () => ({
      body: {
        access_token: 'exchanged-access-token',
        issued_token_type: accessTokenType,
        token_type: 'Bearer',
        expires_in: 600,
        scope: 'read',
      },
    })
    const tokens = new TokenCache({
      fetchToken: tokenExchange({
        ...client(),
        subjectToken: 'subject-token-for-fields',
        subjectTokenType: jwtType,
      }),
    })
    const token = await tokens.get()
    expect(token).toMatchObject({
      accessToken: 'exchanged-access-token',
      tokenType: 'Bearer',
      issued_token_type: accessTokenType,
      scope: 'read',
    })
  })

  describe("token_type N_A (RFC 8693 §2.2.1: 'not an access token')", () => {
    beforeEach(() => {
      endpoint.respond = (n) => ({
        body: {
          access_token: `id-token-${n}`,
          issued_token_type: idTokenType,
          token_type: 'N_A',
          expires_in: 300,
        },
      })
    })

    /** An API that accepts the first ID token, in an x-id-token header. */
    const idTokenApi = () =>
      apiForThisTest({
        accept: (_authorization, hit) => hit.headers['x-id-token'] === 'id-token-1',
      })

    const exchange = (): FetchToken =>
      tokenExchange({
        ...client(),
        subjectToken: 'subject-token-for-id-token',
        subjectTokenType: accessTokenType,
        requestedTokenType: idTokenType,
      })

    it('is kept as N_A, never turned into Bearer: the token is for TokenCache.get()', async () => {
      const token = await new TokenCache({ fetchToken: exchange() }).get()
      expect(token.tokenType).toBe('N_A')
      expect(token.issued_token_type).toBe(idTokenType)
      expect(token.accessToken).toBe('id-token-1')
    })

    it("guards 'fail closed': with the default headers an N_A token is refused (UAT_BAD_HEADERS), the API gets nothing", async () => {
      const { api, agent } = await idTokenApi()
      const dispatcher = agent.compose(accessToken({ origins: api.origin, fetchToken: exchange() }))
      const error = await rejectionOf(request(`${api.origin}/profile`, { dispatcher }))
      expect(error).toBeInstanceOf(AccessTokenError)
      expect((error as AccessTokenError).code).toBe(AccessTokenErrorCode.badHeaders)
      expect(api.hits).toHaveLength(0)
    })

    it('goes to an API in the header a custom headers() names', async () => {
      const { api, agent } = await idTokenApi()
      const dispatcher = agent.compose(
        accessToken({
          origins: api.origin,
          fetchToken: exchange(),
          headers: (token) => ({ 'x-id-token': token.accessToken }),
        }),
      )
      const response = await request(`${api.origin}/profile`, { dispatcher })
      await response.body.dump()
      expect(response.statusCode).toBe(200)
      expect(api.hits[0]?.authorization).toBeUndefined()
    })
  })

  it('redacts the subject and actor tokens (and the client secret) echoed back in an error', async () => {
    echoRequests()
    const subject = secretValue('echoed-subject')
    const actor = secretValue('echoed-actor')
    const fetchToken = tokenExchange({
      ...client(),
      subjectToken: subject,
      subjectTokenType: jwtType,
      actorToken: async () => actor,
      actorTokenType: jwtType,
    })
    const error = await rejectionOf(new TokenCache({ fetchToken }).get())
    expect(error).toBeInstanceOf(TokenRequestError)
    expect((error as TokenRequestError).error).toBe('invalid_grant')
    expect((error as TokenRequestError).errorDescription).toContain('[redacted]')
    expectNoSecrets(error, [
      ...echoedForms(subject),
      ...echoedForms(actor),
      ...echoedForms(clientSecret),
    ])
  })

  it('redacts a subject token that changes on every fetch, through accessToken()', async () => {
    echoRequests()
    const { api, agent } = await apiForThisTest()
    let n = 0
    const subjects: string[] = []
    const dispatcher = agent.compose(
      accessToken({
        origins: api.origin,
        backoff: false,
        fetchToken: tokenExchange({
          ...client(),
          subjectToken: () => {
            const subject = secretValue('rotating-subject', ++n)
            subjects.push(subject)
            return subject
          },
          subjectTokenType: jwtType,
        }),
      }),
    )
    for (let i = 0; i < 2; i++) {
      const error = await rejectionOf(request(`${api.origin}/x`, { dispatcher }))
      expect(error).toBeInstanceOf(TokenRequestError)
      expectNoSecrets(error, subjects.flatMap(echoedForms))
    }
    expect(subjects).toHaveLength(2)
    expect(api.hits).toHaveLength(0)
  })

  it('a subject token function that fails or returns nothing is a TokenRequestError; nothing is sent', async () => {
    const base = {
      ...client(),
      subjectTokenType: jwtType,
    }
    const cause = new Error('token file missing')
    const failing = tokenExchange({
      ...base,
      subjectToken: () => {
        throw cause
      },
    })
    const failed = await rejectionOf(new TokenCache({ fetchToken: failing }).get())
    expect(failed).toBeInstanceOf(TokenRequestError)
    expect((failed as Error).message).toMatch(/subjectToken\(\) failed/)
    expect((failed as Error).cause).toBe(cause)

    const empty = tokenExchange({ ...base, subjectToken: async () => '' })
    const nothing = await rejectionOf(new TokenCache({ fetchToken: empty }).get())
    expect(nothing).toBeInstanceOf(TokenRequestError)
    expect((nothing as Error).message).toMatch(/subjectToken\(\) returned no value/)
    expect(endpoint.requests).toHaveLength(0)
  })

  it('with no client at all (Google STS, workload identity federation): the subject token alone authenticates', async () => {
    const subjectToken = secretValue('projected-sa-token')
    const fetchToken = tokenExchange({
      tokenUrl: endpoint.tokenUrl,
      subjectToken: () => subjectToken,
      subjectTokenType: jwtType,
      requestedTokenType: accessTokenType,
      audience:
        '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k8s',
    })
    await new TokenCache({ fetchToken }).get()
    expect(endpoint.requests[0]?.headers.authorization).toBeUndefined()
    expect([...formOf(1).keys()]).toEqual([
      'grant_type',
      'subject_token',
      'subject_token_type',
      'requested_token_type',
      'audience',
    ])
    expect(formOf(1).get('subject_token')).toBe(subjectToken)
  })

  it('refuses incomplete options at construction', () => {
    const base = {
      ...client(),
      subjectToken: 'subject-token',
      subjectTokenType: jwtType,
    }
    expect(() => tokenExchange({ ...base, subjectToken: '' })).toThrow(/subjectToken/)
    expect(() => tokenExchange({ ...base, subjectTokenType: '' })).toThrow(/subjectTokenType/)
    // RFC 8693 §2.1: actor_token_type is required with actor_token, and only with it.
    expect(() => tokenExchange({ ...base, actorToken: 'actor-token' })).toThrow(/actorTokenType/)
    expect(() => tokenExchange({ ...base, actorTokenType: jwtType })).toThrow(/actorToken/)
    expect(() => tokenExchange({ ...base, clientSecret: undefined })).toThrow(/clientSecret/)
  })
})

describe('jwtBearer() (RFC 7523 §2.1)', () => {
  it('sends grant_type and assertion with the client authentication, through TokenCache', async () => {
    const assertion = secretValue('assertion')
    const tokens = new TokenCache({
      fetchToken: jwtBearer({
        ...client(),
        assertion,
        scope: 'read',
      }),
    })
    expect((await tokens.get()).accessToken).toBe('token-1')
    expect([...formOf(1)]).toEqual([
      ['grant_type', jwtBearerGrant],
      ['assertion', assertion],
      ['scope', 'read'],
    ])
    expect(endpoint.requests[0]?.headers.authorization).toBe(basicCredentials())
  })

  it('with no client at all, sends no client authentication (the assertion authenticates)', async () => {
    const fetchToken = jwtBearer({ tokenUrl: endpoint.tokenUrl, assertion: 'self-signed.jwt.sig' })
    await new TokenCache({ fetchToken }).get()
    expect(endpoint.requests[0]?.headers.authorization).toBeUndefined()
    expect([...formOf(1).keys()]).toEqual(['grant_type', 'assertion'])
  })

  it('gets the assertion afresh on every fetch', async () => {
    let n = 0
    const tokens = new TokenCache({
      fetchToken: jwtBearer({
        ...client(),
        assertion: async () => `assertion-${++n}`,
      }),
    })
    await tokens.get('a')
    await tokens.get('b')
    expect(formOf(1).get('assertion')).toBe('assertion-1')
    expect(formOf(2).get('assertion')).toBe('assertion-2')
  })

  it('redacts the assertion echoed back in an error', async () => {
    echoRequests()
    const assertion = secretValue('echoed-assertion')
    const error = await rejectionOf(
      new TokenCache({
        fetchToken: jwtBearer({ tokenUrl: endpoint.tokenUrl, assertion: () => assertion }),
      }).get(),
    )
    expect(error).toBeInstanceOf(TokenRequestError)
    expectNoSecrets(error, echoedForms(assertion))
  })

  it('a client needs both a clientId and its authentication', () => {
    const base = { tokenUrl: endpoint.tokenUrl, assertion: 'a.b.c' }
    // client_id alone (a public client) is not supported.
    expect(() => jwtBearer({ ...base, clientId })).toThrow(/clientSecret or a clientAuth/)
    expect(() => jwtBearer({ ...base, clientSecret })).toThrow(/clientId/)
    expect(() => jwtBearer({ ...base, assertion: '' })).toThrow(/assertion/)
  })
})

describe('GrantOptions (shared by every grant)', () => {
  const hmacAuth = (secret: string): ClientAuth & { requests: ClientAuthRequest[] } => {
    const requests: ClientAuthRequest[] = []
    const auth = (request: ClientAuthRequest): void => {
      requests.push(request)
      request.form.set('client_id', request.clientId)
      request.headers['x-client-proof'] = `proof-${secret}`
    }
    return Object.assign(auth, { requests })
  }

  it('clientAuth: a hand-written ClientAuth is used, and whatever it adds is redacted', async () => {
    endpoint.respond = (n) => ({
      status: 401,
      body: {
        error: 'invalid_client',
        error_description: `proof ${String(endpoint.requests[n - 1]?.headers['x-client-proof'])}`,
      },
    })
    const auth = hmacAuth('hand-made-9c2b')
    const error = await rejectionOf(
      new TokenCache({
        fetchToken: clientCredentials({
          tokenUrl: endpoint.tokenUrl,
          issuer: 'https://as.example/tenant',
          clientId,
          clientAuth: auth,
        }),
      }).get(),
    )
    expect(endpoint.requests[0]?.headers['x-client-proof']).toBe('proof-hand-made-9c2b')
    expect(formOf(1).get('client_id')).toBe(clientId)
    // tokenUrl and issuer: the endpoint as given, the issuer only named for the client auth.
    expect(auth.requests[0]?.tokenUrl.href).toBe(endpoint.tokenUrl)
    expect(auth.requests[0]?.issuer).toBe('https://as.example/tenant')
    expect(error).toBeInstanceOf(TokenRequestError)
    expectNoSecrets(error, ['proof-hand-made-9c2b'])
  })

  it("clientSecret is client_secret_basic; clientCredentials' authMethod can make it _post", async () => {
    await new TokenCache({
      fetchToken: tokenExchange({
        ...client(),
        subjectToken: 'subject-token',
        subjectTokenType: jwtType,
      }),
    }).get()
    expect(endpoint.requests[0]?.headers.authorization).toBe(basicCredentials())
    expect(formOf(1).has('client_secret')).toBe(false)
    await new TokenCache({
      fetchToken: clientCredentials({
        ...client(),
        authMethod: 'client_secret_post',
      }),
    }).get()
    expect(formOf(2).get('client_secret')).toBe(clientSecret)
    expect(endpoint.requests[1]?.headers.authorization).toBeUndefined()
  })

  it.each([
    [
      'clientSecret and clientAuth together',
      { clientSecret, clientAuth: hmacAuth('x') },
      /clientSecret or a clientAuth, not both/,
    ],
    ['neither clientSecret nor clientAuth', {}, /needs a clientSecret or a clientAuth/],
    [
      'authMethod with a clientAuth',
      { clientAuth: hmacAuth('x'), authMethod: 'client_secret_post' as const },
      /authMethod goes with clientSecret/,
    ],
    ['no clientId', { clientId: undefined, clientSecret }, /needs a clientId/],
    ['neither tokenUrl nor issuer', { tokenUrl: undefined, clientSecret }, /tokenUrl or an issuer/],
    [
      'an issuer with a query',
      { tokenUrl: undefined, issuer: 'https://as.example/?tenant=1', clientSecret },
      /query or fragment/,
    ],
    [
      'an issuer that is not http(s)',
      { tokenUrl: undefined, issuer: 'ftp://as.example', clientSecret },
      /issuer must be an http\(s\) URL/,
    ],
  ])('refuses %s at construction', (_name, options, message) => {
    expect(() =>
      clientCredentials({ tokenUrl: 'https://as.example/token', clientId, ...options }),
    ).toThrow(message)
  })

  it('a tokenUrl with a password is refused without quoting it', () => {
    let thrown: unknown
    try {
      jwtBearer({ tokenUrl: 'https://user:pw-in-url-5150@as.example/token', assertion: 'a.b.c' })
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(TypeError)
    expectNoSecrets(thrown, ['pw-in-url-5150'])
  })
})

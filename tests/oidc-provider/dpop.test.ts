/**
 * DPoP (RFC 9449) against a real authorization server: oidc-provider with `features.dPoP`
 * and nonces required, clients with `dpop_bound_access_tokens: true`, and a loopback
 * resource server that verifies every proof (signature, htm, htu, iat, jti replay, ath,
 * its own nonce) and every token by introspection (`cnf.jkt` = the proof key's
 * thumbprint). See dpop-provider.ts.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { DPoPKey } from '../../lib/dpop/signer.js'
import {
  accessToken,
  clientCredentials,
  type FetchToken,
  privateKeyJwt,
  TokenCache,
} from '../../lib/index.js'
import { registerSecret } from '../support/secret-registry.js'
import { pathOf, startDpopOidcEnvironment } from './dpop-provider.js'
import { useEnvironment } from './use-environment.js'

const env = useEnvironment(startDpopOidcEnvironment, {
  // A test's forced answers must not leak into the next one.
  cleanUp: () => {
    env.api.before = undefined
  },
})
let agent: Agent

beforeAll(() => {
  agent = new Agent({ connections: 32, keepAliveTimeout: 10_000 })
})

afterAll(async () => {
  await agent.close()
})

function newKey(kind: 'ec' | 'ed25519' = 'ec'): KeyObject {
  const { privateKey } =
    kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync(kind)
  registerSecret(privateKey.export({ format: 'jwk' }).d)
  return privateKey
}

function basicGrant(): FetchToken {
  return clientCredentials({
    tokenUrl: env.tokenUrl,
    clientId: env.basicClient.clientId,
    clientSecret: env.basicClient.clientSecret,
    scope: 'read',
  })
}

async function get(dispatcher: ReturnType<Agent['compose']>, path: string): Promise<number> {
  const response = await request(`${env.api.origin}${path}`, { dispatcher })
  await response.body.text()
  return response.statusCode
}

/** Token endpoint answers since `from`, for one client: [status, error]. */
function grantsSince(from: number, clientId: string): Array<[number, string | undefined]> {
  return env.grants
    .slice(from)
    .filter((grant) => grant.clientId === clientId)
    .map((grant) => [grant.status, grant.error])
}

describe('oidc-provider with DPoP and nonces required', () => {
  test('cold start with 50 concurrent requests: 1 successful token request (the nonce round trip aside), all 200, cnf.jkt = the key', async () => {
    const key = newKey()
    const thumbprint = new DPoPKey({ key }).thumbprint
    const grantsBefore = env.grants.length
    const hitsBefore = env.api.hits.length
    const dispatcher = agent.compose(
      accessToken({ origins: env.api.origin, fetchToken: basicGrant(), dpop: { key } }),
    )
    const statuses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => get(dispatcher, `/cold/${i}?page=${i}`)),
    )
    expect(statuses).toEqual(Array(50).fill(200))
    expect(grantsSince(grantsBefore, env.basicClient.clientId)).toEqual([
      [400, 'use_dpop_nonce'],
      [200, undefined],
    ])
    const hits = env.api.hits.slice(hitsBefore)
    const attempts = new Map<string, number>()
    for (const hit of hits) attempts.set(pathOf(hit.url), (attempts.get(pathOf(hit.url)) ?? 0) + 1)
    expect(attempts.size).toBe(50)
    for (const count of attempts.values()) expect(count).toBeLessThanOrEqual(2)
    expect(hits.filter((hit) => hit.status === 200)).toHaveLength(50)
    expect(hits.every((hit) => hit.error === undefined || hit.error === 'use_dpop_nonce')).toBe(
      true,
    )
    // The provider bound the token to our key.
    const token = hits.at(-1)?.authorization?.split(' ')[1] as string
    const claims = await env.introspect(token)
    expect(claims).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: thumbprint } })
  })

  test('EdDSA keys work the same', async () => {
    const key = newKey('ed25519')
    const dispatcher = agent.compose(
      accessToken({ origins: env.api.origin, fetchToken: basicGrant(), dpop: { key } }),
    )
    const statuses = await Promise.all(
      Array.from({ length: 10 }, (_, i) => get(dispatcher, `/ed/${i}`)),
    )
    expect(statuses).toEqual(Array(10).fill(200))
    const token = env.api.hits.at(-1)?.authorization?.split(' ')[1] as string
    expect((await env.introspect(token)).cnf).toEqual({ jkt: new DPoPKey({ key }).thumbprint })
  })

  test('private_key_jwt: the nonce retry carries a fresh assertion, which the provider accepts', async () => {
    const grantsBefore = env.grants.length
    const key = newKey()
    const cache = new TokenCache({
      fetchToken: clientCredentials({
        tokenUrl: env.tokenUrl,
        clientId: env.keyClient.clientId,
        clientAuth: privateKeyJwt({ key: env.keyClient.key }),
      }),
      dpop: { key },
    })
    const token = await cache.get()
    // A reused assertion would be refused here (invalid_client: its jti is spent).
    expect(grantsSince(grantsBefore, env.keyClient.clientId)).toEqual([
      [400, 'use_dpop_nonce'],
      [200, undefined],
    ])
    expect(token.tokenType).toBe('DPoP')
    const dispatcher = agent.compose(accessToken({ origins: env.api.origin, tokens: cache }))
    expect(await get(dispatcher, '/pk-jwt')).toBe(200)
  })

  test('the RS really checks: the token as Bearer, or with another key’s proof, is refused', async () => {
    const key = newKey()
    const cache = new TokenCache({ fetchToken: basicGrant(), dpop: { key } })
    const token = await cache.get()
    const asBearer = await request(`${env.api.origin}/steal`, {
      dispatcher: agent,
      headers: { authorization: `Bearer ${token.accessToken}` },
    })
    await asBearer.body.text()
    expect(asBearer.statusCode).toBe(401)
    // A thief with its own key and the RS's current nonce: the proof verifies, the binding does not.
    const thief = new DPoPKey({ key: newKey() })
    const stolen = await request(`${env.api.origin}/steal`, {
      dispatcher: agent,
      headers: {
        authorization: `DPoP ${token.accessToken}`,
        dpop: thief.proof('GET', `${env.api.origin}/steal`, {
          nonce: env.verifier.nonce,
          accessToken: token.accessToken,
        }),
      },
    })
    await stolen.body.text()
    expect(stolen.statusCode).toBe(401)
    expect(stolen.headers['www-authenticate']).toMatch(/invalid_token/)
    // The owner, through accessToken(): 200.
    const dispatcher = agent.compose(accessToken({ origins: env.api.origin, tokens: cache }))
    expect(await get(dispatcher, '/steal')).toBe(200)
  })

  test('a revoked token: one renewal (with a proof and the remembered AS nonce), no failed caller', async () => {
    const key = newKey()
    const dispatcher = agent.compose(
      accessToken({
        origins: env.api.origin,
        fetchToken: basicGrant(),
        dpop: { key },
        minRenewalInterval: 0,
      }),
    )
    expect(await get(dispatcher, '/revoked/0')).toBe(200)
    const token = env.api.hits.at(-1)?.authorization?.split(' ')[1] as string
    await env.revoke(token)
    expect((await env.introspect(token)).active).toBe(false)
    const grantsBefore = env.grants.length
    const statuses = await Promise.all(
      Array.from({ length: 10 }, (_, i) => get(dispatcher, `/revoked/${i + 1}`)),
    )
    expect(statuses).toEqual(Array(10).fill(200))
    const renewals = grantsSince(grantsBefore, env.basicClient.clientId)
    expect(renewals.filter(([status]) => status === 200)).toHaveLength(1)
    expect(renewals.length).toBeLessThanOrEqual(2)
  })

  test('RS nonce rotation mid-run: no failed caller, at most one extra round trip each', async () => {
    const key = newKey()
    const dispatcher = agent.compose(
      accessToken({ origins: env.api.origin, fetchToken: basicGrant(), dpop: { key } }),
    )
    expect(await get(dispatcher, '/rotate/warm')).toBe(200)
    const hitsBefore = env.api.hits.length
    env.verifier.rotateNonce()
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => get(dispatcher, `/rotate/${i}`)),
    )
    expect(statuses).toEqual(Array(20).fill(200))
    const hits = env.api.hits.slice(hitsBefore)
    expect(hits.length).toBeLessThanOrEqual(40)
    for (let i = 0; i < 20; i++) {
      expect(hits.filter((hit) => hit.url === `/rotate/${i}`).length).toBeLessThanOrEqual(2)
    }
  })
})

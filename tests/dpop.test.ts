/**
 * DPoP (RFC 9449), issue #13: proofs checked with jose; a loopback authorization server that
 * requires a proof and its nonce; a loopback resource server that verifies every proof
 * (signature by the embedded JWK, htm, htu, iat ±60 s, jti never seen, ath, the key's
 * thumbprint = the token's bound jkt, its own nonce). See tests/oidc-provider/dpop-provider.ts.
 */
import {
  createHash,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { Readable } from 'node:stream'
import { inspect } from 'node:util'
import {
  calculateJwkThumbprint,
  compactVerify,
  decodeJwt,
  decodeProtectedHeader,
  EmbeddedJWK,
  jwtVerify,
} from 'jose'
import { Agent, request, fetch as undiciFetch } from 'undici'
import { afterEach, describe, expect, test } from 'vitest'
import { DPoPKey } from '../lib/dpop/signer.js'
import {
  accessToken,
  channelNames,
  clientCredentials,
  type DPoPOptions,
  type DPoPSigner,
  type FetchToken,
  memoryStore,
  privateKeyJwt,
  TokenCache,
  TokenRequestError,
} from '../lib/index.js'
import { encryptedCodec, plainCodec } from '../lib/stores/redis-codec.js'
import {
  ath,
  type Binding,
  type DpopResourceServer,
  type ProofOutcome,
  ProofVerifier,
  pathOf,
  startDpopResourceServer,
} from './oidc-provider/dpop-provider.js'
import { registerSecret } from './support/secret-registry.js'
import { rawHeaderValues, startServer } from './support/servers.js'

type Alg = 'ES256' | 'EdDSA'

interface TestKey {
  alg: Alg
  privateKey: KeyObject
  publicKey: KeyObject
  /** The private JWK (with d). */
  jwk: JsonWebKey
  pem: string
  /** Every string that would be private key material if it showed up somewhere. */
  material: string[]
}

/** A fresh key whose private parts are registered with the suite-wide secret scan. */
function newKey(alg: Alg = 'ES256'): TestKey {
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('ed25519')
  const jwk = pair.privateKey.export({ format: 'jwk' })
  const pem = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string
  const body = pem
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('-----'))
    .join('')
  const material = [jwk.d as string, body]
  for (const value of material) registerSecret(value)
  return { alg, ...pair, jwk, pem, material }
}

function expectNoMaterial(text: string, key: TestKey): void {
  for (const value of key.material) expect(text).not.toContain(value)
  // Any 20-character run of the PEM body (it may be cut or re-wrapped).
  const body = key.material[1] as string
  for (let i = 0; i + 20 <= body.length; i += 20) expect(text).not.toContain(body.slice(i, i + 20))
}

async function verifyProof(proof: string, alg: Alg) {
  const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
    typ: 'dpop+jwt',
    algorithms: [alg],
  })
  return {
    claims: payload as Record<string, unknown>,
    header: protectedHeader as Record<string, unknown>,
  }
}

function claimsOf(proof: string): Record<string, unknown> {
  return decodeJwt(proof) as Record<string, unknown>
}

/** A jti: 128 random bits, base64url (RFC 9449 §4.2: at least 96 bits of pseudorandom data). */
const randomJti = /^[A-Za-z0-9_-]{21}[AQgw]$/

describe('DPoPKey: proofs (RFC 9449 §4.2)', () => {
  test.each(['ES256', 'EdDSA'] as const)(
    '%s: a proof verifies with jose by its embedded key; header typ, alg and a public jwk only',
    async (alg) => {
      const key = newKey(alg)
      const signer = new DPoPKey({ key: key.privateKey })
      const before = Math.floor(Date.now() / 1000)
      const proof = signer.proof('GET', 'https://api.example/things')
      const after = Math.floor(Date.now() / 1000)
      const { claims, header } = await verifyProof(proof, alg)
      expect(header.typ).toBe('dpop+jwt')
      expect(header.alg).toBe(alg)
      const jwk = header.jwk as Record<string, unknown>
      expect(jwk).not.toHaveProperty('d')
      expect(Object.keys(jwk).sort()).toEqual(
        alg === 'ES256' ? ['crv', 'kty', 'x', 'y'] : ['crv', 'kty', 'x'],
      )
      const publicJwk = key.publicKey.export({ format: 'jwk' })
      expect(jwk).toEqual(
        alg === 'ES256'
          ? { kty: 'EC', crv: 'P-256', x: publicJwk.x, y: publicJwk.y }
          : { kty: 'OKP', crv: 'Ed25519', x: publicJwk.x },
      )
      expect(claims.htm).toBe('GET')
      expect(claims.htu).toBe('https://api.example/things')
      expect(claims.iat).toBeGreaterThanOrEqual(before)
      expect(claims.iat).toBeLessThanOrEqual(after)
      expect(Number.isInteger(claims.iat)).toBe(true)
      expect(claims.jti).toMatch(randomJti)
      expect(claims).not.toHaveProperty('ath')
      expect(claims).not.toHaveProperty('nonce')
      // compactVerify too: the raw JWS, not just the JWT layer.
      const raw = await compactVerify(proof, EmbeddedJWK, { algorithms: [alg] })
      expect(JSON.parse(Buffer.from(raw.payload).toString())).toEqual(claims)
      expectNoMaterial(proof, key)
      expectNoMaterial(Buffer.from(proof.split('.')[0] as string, 'base64url').toString(), key)
    },
  )

  test.each(['ES256', 'EdDSA'] as const)(
    '%s: the key as a KeyObject, a JWK or PEM gives the same key; alg is inferred or checked',
    async (alg) => {
      const key = newKey(alg)
      const fromObject = new DPoPKey({ key: key.privateKey })
      const fromJwk = new DPoPKey({ key: key.jwk })
      const fromPem = new DPoPKey({ key: key.pem, alg })
      expect(fromJwk.thumbprint).toBe(fromObject.thumbprint)
      expect(fromPem.thumbprint).toBe(fromObject.thumbprint)
      for (const signer of [fromObject, fromJwk, fromPem]) {
        const { header } = await verifyProof(signer.proof('POST', 'https://as.example/token'), alg)
        expect(header.alg).toBe(alg)
      }
    },
  )

  test.each(['ES256', 'EdDSA'] as const)(
    '%s: the thumbprint is the RFC 7638 one jose computes from the public key',
    async (alg) => {
      const key = newKey(alg)
      const signer = new DPoPKey({ key: key.privateKey })
      const expected = await calculateJwkThumbprint(
        key.publicKey.export({ format: 'jwk' }) as Parameters<typeof calculateJwkThumbprint>[0],
        'sha256',
      )
      expect(signer.thumbprint).toBe(expected)
      const { header } = await verifyProof(signer.proof('GET', 'https://a.example/'), alg)
      expect(
        await calculateJwkThumbprint(
          header.jwk as Parameters<typeof calculateJwkThumbprint>[0],
          'sha256',
        ),
      ).toBe(expected)
    },
  )

  test('htu is the URI without query and fragment, nothing else changed', () => {
    const signer = new DPoPKey({ key: newKey().privateKey })
    const htu = (url: string) => claimsOf(signer.proof('GET', url)).htu
    expect(htu('https://api.example/a/b?x=1&y=2')).toBe('https://api.example/a/b')
    expect(htu('https://api.example/a/b#frag')).toBe('https://api.example/a/b')
    expect(htu('https://api.example/a/b?x=1#f?g')).toBe('https://api.example/a/b')
    expect(htu('https://api.example/a/b#f?g')).toBe('https://api.example/a/b')
    expect(htu('https://api.example:8443/a%20b/')).toBe('https://api.example:8443/a%20b/')
    expect(htu('http://127.0.0.1:1234/')).toBe('http://127.0.0.1:1234/')
  })

  test('jti is unique across 10 000 proofs (128 random bits each)', () => {
    const signer = new DPoPKey({ key: newKey().privateKey })
    const jtis = new Set<unknown>()
    for (let i = 0; i < 10_000; i++) {
      const { jti } = claimsOf(signer.proof('GET', 'https://api.example/x', { accessToken: 'tok' }))
      expect(jti).toMatch(randomJti)
      jtis.add(jti)
    }
    expect(jtis.size).toBe(10_000)
  })

  test('ath = base64url(SHA-256(token)), right for each token even when tokens alternate', async () => {
    const key = newKey()
    const signer = new DPoPKey({ key: key.privateKey })
    const tokens = ['token-one.a.b', 'token-two', 'token-one.a.b', 'x'.repeat(1300), 'token-two']
    for (const token of tokens) {
      const proof = signer.proof('GET', 'https://api.example/', { accessToken: token })
      const { claims } = await verifyProof(proof, 'ES256')
      expect(claims.ath).toBe(createHash('sha256').update(token, 'ascii').digest('base64url'))
    }
  })

  test('nonce goes in only when given, exactly as given (JSON-escaped)', async () => {
    const signer = new DPoPKey({ key: newKey('EdDSA').privateKey })
    const nonce = 'n-"quoted"\\back/slash!~'
    const { claims } = await verifyProof(
      signer.proof('PUT', 'https://api.example/', { nonce, accessToken: 't' }),
      'EdDSA',
    )
    expect(claims.nonce).toBe(nonce)
    expect(claims.htm).toBe('PUT')
    expect(claimsOf(signer.proof('PUT', 'https://api.example/'))).not.toHaveProperty('nonce')
    expect(
      claimsOf(signer.proof('PUT', 'https://api.example/', { nonce: undefined })),
    ).not.toHaveProperty('nonce')
  })

  test('nonces are kept per origin, the newest wins, and only so many origins are kept', () => {
    const signer = new DPoPKey({ key: newKey().privateKey })
    expect(signer.nonce('https://a.example')).toBeUndefined()
    signer.rememberNonce('https://a.example', 'n1')
    signer.rememberNonce('https://b.example', 'm1')
    signer.rememberNonce('https://a.example', 'n2')
    expect(signer.nonce('https://a.example')).toBe('n2')
    expect(signer.nonce('https://b.example')).toBe('m1')
    for (let i = 0; i < 5_000; i++) signer.rememberNonce(`https://h${i}.example`, `v${i}`)
    expect(signer.nonce('https://a.example')).toBeUndefined()
    expect(signer.nonce('https://h4999.example')).toBe('v4999')
  })

  test('the signer shows no private key: inspect, JSON, own properties', () => {
    const key = newKey()
    const signer = new DPoPKey({ key: key.jwk })
    expectNoMaterial(inspect(signer, { depth: 10, showHidden: true }), key)
    expectNoMaterial(JSON.stringify(signer), key)
    expect(Object.keys(signer).sort()).toEqual(['required', 'thumbprint'])
  })
})

describe('DPoPKey: construction errors are TypeErrors without key material', () => {
  const ec = newKey('ES256')
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' })
  const p384Jwk = p384.privateKey.export({ format: 'jwk' })
  registerSecret(p384Jwk.d)
  const ed448 = generateKeyPairSync('ed448')
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const rsaJwk = rsa.privateKey.export({ format: 'jwk' })
  registerSecret(rsaJwk.d)
  const material = [
    ...ec.material,
    p384Jwk.d as string,
    rsaJwk.d as string,
    (rsaJwk.d as string).slice(0, 24),
    ec.jwk.x as string,
    ec.jwk.y as string,
  ]

  const cases: Array<[string, unknown, RegExp]> = [
    ['a public KeyObject', ec.publicKey, /public key/],
    ['a public JWK', ec.publicKey.export({ format: 'jwk' }), /public key/],
    [
      'a public PEM',
      ec.publicKey.export({ format: 'pem', type: 'spki' }),
      /public key|certificate/,
    ],
    ['an RSA KeyObject', rsa.privateKey, /ES256|EdDSA/],
    ['an RSA JWK', rsaJwk, /ES256|EdDSA/],
    ['a P-384 key', p384.privateKey, /ES256|EdDSA|P-256/],
    ['a P-384 JWK', p384Jwk, /ES256|EdDSA|P-256/],
    ['an Ed448 key', ed448.privateKey, /ed448|not supported|ES256|EdDSA/i],
    ['a secret key', Object.assign({}, { kty: 'oct', k: 'c2VjcmV0c2VjcmV0c2VjcmV0' }), /secret/],
    ['garbage: an empty object', {}, /KeyObject|JWK|PEM/],
    ['garbage: a number', 42, /KeyObject|JWK|PEM/],
    ['garbage: a string that is not PEM', 'not-a-key-at-all', /PEM/],
    [
      'garbage: a broken PEM',
      '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
      /PEM/,
    ],
    ['garbage: a JWK with a broken x', { ...ec.jwk, x: 'AAAA' }, /JWK/],
    ['garbage: a Buffer', Buffer.from(ec.pem), /Buffer/],
    ['nothing', undefined, /required/],
  ]
  test.each(cases)('%s', (_name, key, reason) => {
    let caught: unknown
    try {
      new DPoPKey({ key } as DPoPOptions)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(TypeError)
    const message = (caught as Error).message
    expect(message).toMatch(/^dpop/)
    expect(message).toMatch(reason)
    const rendered = `${message}\n${inspect(caught, { depth: 5 })}`
    for (const value of material) expect(rendered).not.toContain(value)
    expect((caught as Error).cause).toBeUndefined()
  })

  // Node's createPrivateKey() takes an EC JWK whose d is not the private key of its x/y
  // without a word; every proof is then signed with d but names x/y in its jwk, so every
  // server refuses every proof (invalid_dpop_proof), long after start-up.
  test('an EC JWK whose d does not belong to its x/y is refused at construction', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      format: 'jwk',
    })
    registerSecret(other.d)
    let caught: unknown
    let signer: DPoPKey | undefined
    try {
      signer = new DPoPKey({ key: { ...ec.jwk, d: other.d } })
    } catch (error) {
      caught = error
    }
    if (signer !== undefined) {
      // What happens instead: the proofs do not verify by their own jwk.
      await expect(
        jwtVerify(signer.proof('GET', 'https://api.example/'), EmbeddedJWK),
      ).rejects.toThrow(/signature/)
    }
    expect(caught).toBeInstanceOf(TypeError)
    expect((caught as Error).message).not.toContain(other.d as string)
  })

  test('an alg that does not fit the key, or one DPoP does not take', () => {
    expect(() => new DPoPKey({ key: ec.privateKey, alg: 'EdDSA' })).toThrow(TypeError)
    expect(() => new DPoPKey({ key: newKey('EdDSA').privateKey, alg: 'ES256' })).toThrow(TypeError)
    expect(() => new DPoPKey({ key: ec.privateKey, alg: 'HS256' as unknown as 'ES256' })).toThrow(
      TypeError,
    )
    expect(() => new DPoPKey(undefined as unknown as DPoPOptions)).toThrow(TypeError)
  })

  test('TokenCache and accessToken refuse a bad key at construction; dpop with tokens is an error', () => {
    const fetchToken: FetchToken = async () => ({ accessToken: 'x', tokenType: 'DPoP' })
    expect(() => new TokenCache({ fetchToken, dpop: { key: ec.publicKey } })).toThrow(TypeError)
    expect(() =>
      accessToken({ origins: 'http://127.0.0.1:1', fetchToken, dpop: { key: rsa.privateKey } }),
    ).toThrow(TypeError)
    const tokens = new TokenCache({ fetchToken, dpop: { key: ec.privateKey } })
    expect(() =>
      accessToken({ origins: 'http://127.0.0.1:1', tokens, dpop: { key: ec.privateKey } }),
    ).toThrow(/dpop/)
  })
})

// ---------------------------------------------------------------------------------------------
// A loopback authorization server and resource server.

interface AsRequest {
  form: URLSearchParams
  proofs: string[]
  outcome: ProofOutcome
  status: number
  error: string | undefined
  /** The proof's nonce, when it verified far enough to say. */
  nonce: string | undefined
  /** `client_assertion`'s jti, with private_key_jwt. */
  assertionJti: string | undefined
}

type LoopbackServer = Awaited<ReturnType<typeof startServer>>

interface AuthorizationServer extends LoopbackServer {
  tokenUrl: string
  verifier: ProofVerifier
  requests: AsRequest[]
  /** Tokens issued, and what the RS learns about them. */
  bindings: Map<string, Binding>
  /** What kind of token the server issues. */
  issue: 'DPoP' | 'dpop' | 'Bearer'
  /** Rotate the nonce on every 200 and send the new one (RFC 9449 §8.2). */
  rotateOnSuccess: boolean
  /** Answer use_dpop_nonce without a DPoP-Nonce header. */
  withholdNonce: boolean
  expiresIn: number
  successes(): number
}

let issued = 0

async function startAuthorizationServer(): Promise<AuthorizationServer> {
  const verifier = new ProofVerifier({ requireNonce: true, label: 'as' })
  const requests: AsRequest[] = []
  const bindings = new Map<string, Binding>()
  let origin = ''
  const server = await startServer(async (req, res, body) => {
    const form = new URLSearchParams(body.toString())
    const proofs = rawHeaderValues(req.rawHeaders, 'dpop')
    const outcome = await verifier.verify(proofs, {
      htm: req.method ?? '',
      htu: `${origin}${pathOf(req.url ?? '')}`,
    })
    const assertion = form.get('client_assertion')
    const record: AsRequest = {
      form,
      proofs,
      outcome,
      status: 0,
      error: undefined,
      nonce: outcome.ok ? outcome.claims.nonce : undefined,
      assertionJti: assertion === null ? undefined : String(decodeJwt(assertion).jti),
    }
    requests.push(record)
    const json = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      record.status = status
      res.writeHead(status, { 'content-type': 'application/json', ...headers })
      res.end(JSON.stringify(payload))
    }
    if (as.issue !== 'Bearer' && !outcome.ok) {
      record.error = outcome.error
      const nonce = outcome.error === 'use_dpop_nonce' && !as.withholdNonce ? verifier.nonce : ''
      json(400, { error: outcome.error }, nonce ? { 'dpop-nonce': nonce } : {})
      return
    }
    issued++
    const token = `at${issued}.${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`
    registerSecret(token)
    bindings.set(token, {
      active: true,
      jkt: as.issue === 'Bearer' || !outcome.ok ? undefined : outcome.thumbprint,
    })
    const headers: Record<string, string> = {}
    if (as.rotateOnSuccess) headers['dpop-nonce'] = verifier.rotateNonce()
    json(200, { access_token: token, token_type: as.issue, expires_in: as.expiresIn }, headers)
  })
  origin = server.origin
  const as: AuthorizationServer = Object.assign(server, {
    tokenUrl: `${server.origin}/token`,
    verifier,
    requests,
    bindings,
    issue: 'DPoP' as AuthorizationServer['issue'],
    rotateOnSuccess: false,
    withholdNonce: false,
    expiresIn: 3600,
    successes: () => requests.filter((r) => r.status === 200).length,
  })
  return as
}

const clientSecret = 'dpop-loopback-client-secret'
registerSecret(clientSecret)

interface World {
  as: AuthorizationServer
  rs: DpopResourceServer
  rsVerifier: ProofVerifier
  agent: Agent
  key: TestKey
}

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((close) => close()))
})

async function world(
  options: { alg?: Alg; nonceOnEveryAnswer?: boolean; allowBearer?: boolean } = {},
): Promise<World> {
  const as = await startAuthorizationServer()
  const rsVerifier = new ProofVerifier({ requireNonce: true, label: 'rs' })
  const rs = await startDpopResourceServer({
    verifier: rsVerifier,
    binding: (token) => as.bindings.get(token),
    nonceOnEveryAnswer: options.nonceOnEveryAnswer ?? false,
    allowBearer: options.allowBearer ?? false,
  })
  const agent = new Agent({ connections: 64, keepAliveTimeout: 10_000 })
  cleanups.push(async () => {
    await agent.close()
    await Promise.all([as.close(), rs.close()])
  })
  return { as, rs, rsVerifier, agent, key: newKey(options.alg ?? 'ES256') }
}

function grant(w: World): FetchToken {
  return clientCredentials({ tokenUrl: w.as.tokenUrl, clientId: 'dpop-client', clientSecret })
}

function dpopAgent(
  w: World,
  options: Partial<Parameters<typeof accessToken>[0]> = {},
): ReturnType<Agent['compose']> {
  return w.agent.compose(
    accessToken({
      origins: w.rs.origin,
      fetchToken: grant(w),
      dpop: { key: w.key.privateKey },
      minRenewalInterval: 0,
      ...options,
    }),
  )
}

async function call(
  dispatcher: ReturnType<Agent['compose']>,
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; text: string }> {
  const response = await request(url, {
    dispatcher,
    method: (init.method ?? 'GET') as 'GET',
    headers: init.headers,
    body: init.body as string | undefined,
  })
  return { status: response.statusCode, text: await response.body.text() }
}

/** RS hits per path (without query): how many attempts each logical request took. */
function attemptsPerPath(rs: DpopResourceServer): Map<string, number> {
  const counts = new Map<string, number>()
  for (const hit of rs.hits) counts.set(pathOf(hit.url), (counts.get(pathOf(hit.url)) ?? 0) + 1)
  return counts
}

function retryEvents(): { events: unknown[]; stop: () => void } {
  const events: unknown[] = []
  const listener = (message: unknown) => events.push(message)
  subscribe('undici-access-token:retry', listener)
  return { events, stop: () => unsubscribe('undici-access-token:retry', listener) }
}

describe('token requests carry a proof; the AS nonce costs one round trip', () => {
  test('POST + token URL, no ath; 400 use_dpop_nonce → once more with the nonce and a new jti; token_type DPoP', async () => {
    const w = await world()
    const cache = new TokenCache({ fetchToken: grant(w), dpop: { key: w.key.privateKey } })
    const token = await cache.get()
    expect(w.as.requests.map((r) => [r.status, r.error])).toEqual([
      [400, 'use_dpop_nonce'],
      [200, undefined],
    ])
    const [first, second] = w.as.requests as [AsRequest, AsRequest]
    expect(first.proofs).toHaveLength(1)
    expect(second.proofs).toHaveLength(1)
    expect(second.nonce).toBe(w.as.verifier.nonce)
    const a = claimsOf(first.proofs[0] as string)
    const b = claimsOf(second.proofs[0] as string)
    expect(a).toMatchObject({ htm: 'POST', htu: w.as.tokenUrl })
    expect(a).not.toHaveProperty('ath')
    expect(a).not.toHaveProperty('nonce')
    expect(b.jti).not.toBe(a.jti)
    expect(token.tokenType).toBe('DPoP')
    expect(token.dpopThumbprint).toBe(new DPoPKey({ key: w.key.privateKey }).thumbprint)
    expect(w.as.bindings.get(token.accessToken)?.jkt).toBe(token.dpopThumbprint)
    // The nonce is remembered: a forced second fetch costs one request.
    await cache.invalidate('default')
    await cache.get()
    expect(w.as.requests).toHaveLength(3)
    expect(w.as.successes()).toBe(2)
  })

  test('through a dispatcher (not global fetch): the same proof and the same one nonce retry', async () => {
    const w = await world()
    const fetchToken = clientCredentials({
      tokenUrl: w.as.tokenUrl,
      clientId: 'dpop-client',
      clientSecret,
      dispatcher: w.agent,
    })
    const cache = new TokenCache({ fetchToken, dpop: { key: w.key.privateKey } })
    expect((await cache.get()).tokenType).toBe('DPoP')
    expect(w.as.requests.map((r) => r.status)).toEqual([400, 200])
    expect(w.as.verifier.refusals).toEqual(['use_dpop_nonce: no nonce'])
  })

  test('the nonce retry signs a fresh client assertion (private_key_jwt: a spent jti is refused)', async () => {
    const w = await world()
    const clientKey = newKey('ES256')
    const fetchToken = clientCredentials({
      tokenUrl: w.as.tokenUrl,
      clientId: 'dpop-pk-client',
      clientAuth: privateKeyJwt({ key: clientKey.privateKey }),
    })
    const cache = new TokenCache({ fetchToken, dpop: { key: w.key.privateKey } })
    await cache.get()
    const [first, second] = w.as.requests as [AsRequest, AsRequest]
    expect(w.as.requests).toHaveLength(2)
    expect(first.assertionJti).toBeDefined()
    expect(second.assertionJti).toBeDefined()
    expect(second.assertionJti).not.toBe(first.assertionJti)
    expect(second.form.get('client_assertion')).not.toBe(first.form.get('client_assertion'))
  })

  test('token_type "dpop" in any case is DPoP: sent as `Authorization: DPoP`', async () => {
    const w = await world()
    w.as.issue = 'dpop'
    const dispatcher = dpopAgent(w)
    expect((await call(dispatcher, `${w.rs.origin}/lower`)).status).toBe(200)
    expect(w.rs.hits.at(-1)?.authorization).toMatch(/^DPoP \S+$/)
  })

  test('an AS that rotates its nonce on a 200 (§8.2): the next token request uses it, no extra round trip', async () => {
    const w = await world()
    w.as.rotateOnSuccess = true
    const cache = new TokenCache({ fetchToken: grant(w), dpop: { key: w.key.privateKey } })
    await cache.get()
    expect(w.as.requests).toHaveLength(2)
    for (let i = 0; i < 3; i++) {
      await cache.invalidate('default')
      await cache.get()
    }
    expect(w.as.requests).toHaveLength(5)
    expect(w.as.requests.map((r) => r.status)).toEqual([400, 200, 200, 200, 200])
  })

  test('bounded: an AS that wants another nonce every time gets two attempts, then a TokenRequestError', async () => {
    const w = await world()
    const cache = new TokenCache({
      fetchToken: grant(w),
      dpop: { key: w.key.privateKey },
      backoff: false,
    })
    const original = w.as.handle
    w.as.handle = (req, res, body) => {
      w.as.verifier.rotateNonce()
      return original(req, res, body)
    }
    const error = await cache.get().catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(TokenRequestError)
    expect((error as TokenRequestError).error).toBe('use_dpop_nonce')
    expect(w.as.requests).toHaveLength(2)
  })

  test('use_dpop_nonce without a DPoP-Nonce header is not retried', async () => {
    const w = await world()
    w.as.withholdNonce = true
    const cache = new TokenCache({
      fetchToken: grant(w),
      dpop: { key: w.key.privateKey },
      backoff: false,
    })
    await expect(cache.get()).rejects.toBeInstanceOf(TokenRequestError)
    expect(w.as.requests).toHaveLength(1)
  })
})

describe('resource requests: Authorization: DPoP and a fresh, verified proof each', () => {
  test.each(['ES256', 'EdDSA'] as const)(
    '%s: cold start with 200 concurrent requests → 1 token (plus the one nonce round trip), all 200 OK',
    async (alg) => {
      const w = await world({ alg })
      const dispatcher = dpopAgent(w)
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => call(dispatcher, `${w.rs.origin}/items/${i}?q=${i}`)),
      )
      expect(results.map((r) => r.status)).toEqual(Array(200).fill(200))
      expect(w.as.successes()).toBe(1)
      expect(w.as.requests.length).toBeLessThanOrEqual(2)
      // Each caller: at most one extra round trip (the RS's nonce), never a failure.
      const attempts = attemptsPerPath(w.rs)
      expect(attempts.size).toBe(200)
      for (const count of attempts.values()) expect(count).toBeLessThanOrEqual(2)
      expect(w.rs.hits.filter((hit) => hit.status === 200)).toHaveLength(200)
      expect(new Set(w.rs.hits.map((hit) => hit.error).filter(Boolean))).toEqual(
        new Set(['use_dpop_nonce']),
      )
      // Every proof the RS saw verified (no refusal but the nonce), with 400 distinct jtis.
      expect(w.rsVerifier.refusals.every((r) => r.startsWith('use_dpop_nonce'))).toBe(true)
      expect(w.rsVerifier.jtis.size).toBe(w.rs.hits.length)
      // htu had no query: the verifier compared origin + path exactly.
      const sample = claimsOf(w.rs.hits.at(-1)?.proofs[0] as string)
      expect(sample.htu).toBe(`${w.rs.origin}${pathOf(w.rs.hits.at(-1)?.url ?? '')}`)
      expect(decodeProtectedHeader(w.rs.hits[0]?.proofs[0] as string).alg).toBe(alg)
    },
  )

  test('RS nonce rotation mid-run: exactly one extra round trip, no failed caller', async () => {
    const w = await world()
    const dispatcher = dpopAgent(w)
    const statuses: number[] = []
    for (let i = 0; i < 20; i++) {
      if (i === 10) w.rsVerifier.rotateNonce()
      statuses.push((await call(dispatcher, `${w.rs.origin}/seq/${i}`)).status)
    }
    expect(statuses).toEqual(Array(20).fill(200))
    // 20 requests, 2 nonce round trips: the first request's, and the rotation's.
    expect(w.rs.hits).toHaveLength(22)
    expect(w.rs.statusesOf('/seq/0')).toEqual([401, 200])
    expect(w.rs.statusesOf('/seq/10')).toEqual([401, 200])
    expect(w.as.successes()).toBe(1)
  })

  test('RS nonce rotation with 100 requests in flight: none fails, each takes at most 2 attempts', async () => {
    const w = await world()
    const dispatcher = dpopAgent(w)
    expect((await call(dispatcher, `${w.rs.origin}/warm`)).status).toBe(200)
    let rotated = false
    w.rs.before = () => {
      if (!rotated && w.rs.hits.length > 30) {
        rotated = true
        w.rsVerifier.rotateNonce()
      }
      return undefined
    }
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => call(dispatcher, `${w.rs.origin}/burst/${i}`)),
    )
    expect(rotated).toBe(true)
    expect(results.map((r) => r.status)).toEqual(Array(100).fill(200))
    for (const [path, count] of attemptsPerPath(w.rs)) {
      if (path.startsWith('/burst/')) expect(count).toBeLessThanOrEqual(2)
    }
    expect(w.as.successes()).toBe(1)
  })

  test('a DPoP-Nonce on a 200 is remembered: the next request uses it without a round trip', async () => {
    const w = await world({ nonceOnEveryAnswer: true })
    const dispatcher = dpopAgent(w)
    expect((await call(dispatcher, `${w.rs.origin}/a`)).status).toBe(200)
    expect(w.rs.statusesOf('/a')).toEqual([401, 200])
    // /b is accepted with the current nonce; its 200 announces the next one (RFC 9449 §9).
    w.rs.before = (hit) => {
      if (hit.url === '/b') w.rsVerifier.rotateNonce()
      return undefined
    }
    expect((await call(dispatcher, `${w.rs.origin}/b`)).status).toBe(200)
    w.rs.before = undefined
    expect((await call(dispatcher, `${w.rs.origin}/c`)).status).toBe(200)
    expect(w.rs.statusesOf('/b')).toEqual([200])
    expect(w.rs.statusesOf('/c')).toEqual([200])
    expect(w.rs.hits.at(-1)?.nonce).toBe(w.rsVerifier.nonce)
  })

  test('AS nonce rotation mid-run: the renewal costs one extra token round trip, no failed caller', async () => {
    const w = await world()
    const dispatcher = dpopAgent(w)
    expect((await call(dispatcher, `${w.rs.origin}/r/0`)).status).toBe(200)
    expect(w.as.requests).toHaveLength(2)
    const first = w.rs.hits.at(-1)?.authorization?.split(' ')[1] as string
    // The AS rotates; the RS revokes the token (a renewal must happen).
    w.as.verifier.rotateNonce()
    w.rs.revoked.add(first)
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => call(dispatcher, `${w.rs.origin}/r/${i + 1}`)),
    )
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200))
    // One renewal: the stale nonce (400 use_dpop_nonce) and the retry with the new one.
    expect(w.as.requests.slice(2).map((r) => r.status)).toEqual([400, 200])
    expect(w.as.successes()).toBe(2)
  })

  test('a replayed proof is refused by the RS; our proofs never repeat a jti', async () => {
    const w = await world()
    const dispatcher = dpopAgent(w)
    for (let i = 0; i < 5; i++) {
      expect((await call(dispatcher, `${w.rs.origin}/replay`)).status).toBe(200)
    }
    const accepted = w.rs.hits.filter((hit) => hit.status === 200)
    const captured = accepted[0]
    expect(captured).toBeDefined()
    // Resent by hand, through a plain agent: same token, same proof.
    const replay = await request(`${w.rs.origin}/replay`, {
      dispatcher: w.agent,
      headers: {
        authorization: captured?.authorization as string,
        dpop: captured?.proofs[0] as string,
      },
    })
    await replay.body.text()
    expect(replay.statusCode).toBe(401)
    expect(replay.headers['www-authenticate']).toMatch(/invalid_dpop_proof/)
    expect(w.rsVerifier.refusals.at(-1)).toMatch(/jti replayed/)
    // Ours: every proof sent had its own jti.
    const ours = w.rs.hits.slice(0, -1).map((hit) => claimsOf(hit.proofs[0] as string).jti)
    expect(new Set(ours).size).toBe(ours.length)
  })

  test('a Bearer answer while DPoP is required (default): TokenRequestError, the API is not called', async () => {
    const w = await world()
    w.as.issue = 'Bearer'
    const dispatcher = dpopAgent(w)
    const error = await call(dispatcher, `${w.rs.origin}/never`).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(TokenRequestError)
    expect((error as Error).message).toMatch(/DPoP/)
    const token = [...w.as.bindings.keys()][0] as string
    expect(inspect(error, { depth: 5 })).not.toContain(token)
    expect(w.rs.hits).toHaveLength(0)
    // Nor is it kept: TokenCache.get() fails the same way.
    const cache = new TokenCache({ fetchToken: grant(w), dpop: { key: w.key.privateKey } })
    await expect(cache.get()).rejects.toBeInstanceOf(TokenRequestError)
  })

  test('required: false and a Bearer answer: sent as Bearer, without a DPoP header', async () => {
    const w = await world({ allowBearer: true })
    w.as.issue = 'Bearer'
    const dispatcher = dpopAgent(w, { dpop: { key: w.key.privateKey, required: false } })
    expect((await call(dispatcher, `${w.rs.origin}/bearer`)).status).toBe(200)
    const hit = w.rs.hits[0]
    expect(hit?.authorization).toMatch(/^Bearer \S+$/)
    expect(hit?.proofs).toEqual([])
    // The token request still carried a proof.
    expect(w.as.requests.every((r) => r.proofs.length === 1)).toBe(true)
  })

  test('POST bodies (a string, a stream) are sent again on the nonce retry', async () => {
    const w = await world()
    const dispatcher = dpopAgent(w)
    const text = await call(dispatcher, `${w.rs.origin}/post-string`, {
      method: 'POST',
      body: 'hello=world',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    expect(text.status).toBe(200)
    w.rsVerifier.rotateNonce()
    const streamed = await call(dispatcher, `${w.rs.origin}/post-stream`, {
      method: 'POST',
      body: Readable.from([Buffer.from('chunk-1;'), Buffer.from('chunk-2')]),
    })
    expect(streamed.status).toBe(200)
    const bodies = (path: string) =>
      w.rs.hits.filter((hit) => hit.url === path).map((hit) => [hit.status, hit.body])
    expect(bodies('/post-string')).toEqual([
      [401, 'hello=world'],
      [200, 'hello=world'],
    ])
    expect(bodies('/post-stream')).toEqual([
      [401, 'chunk-1;chunk-2'],
      [200, 'chunk-1;chunk-2'],
    ])
    for (const hit of w.rs.hits) expect(claimsOf(hit.proofs[0] as string).htm).toBe('POST')
  })

  test('undici fetch with a stream body: the nonce retry sends it again', async () => {
    const w = await world()
    const dispatcher = dpopAgent(w)
    const response = await undiciFetch(`${w.rs.origin}/fetch?x=1`, {
      dispatcher,
      method: 'POST',
      body: Readable.toWeb(Readable.from([Buffer.from('streamed-')])) as ReadableStream,
      duplex: 'half',
    })
    expect(response.status).toBe(200)
    await response.text()
    expect(w.rs.hits.map((hit) => [hit.status, hit.body])).toEqual([
      [401, 'streamed-'],
      [200, 'streamed-'],
    ])
  })

  test('a nonce retry then an invalid_token renewal in one request: 3 attempts, 1 renewal', async () => {
    const w = await world()
    const cache = new TokenCache({
      fetchToken: grant(w),
      dpop: { key: w.key.privateKey },
      minRenewalInterval: 0,
    })
    const old = await cache.get()
    w.rs.revoked.add(old.accessToken)
    const dispatcher = w.agent.compose(accessToken({ origins: w.rs.origin, tokens: cache }))
    const retries = retryEvents()
    try {
      expect((await call(dispatcher, `${w.rs.origin}/both`)).status).toBe(200)
    } finally {
      retries.stop()
    }
    expect(w.rs.hits.map((hit) => [hit.status, hit.error])).toEqual([
      [401, 'use_dpop_nonce'],
      [401, 'invalid_token'],
      [200, undefined],
    ])
    // The nonce retry kept the token; the renewal replaced it.
    const tokens = w.rs.hits.map((hit) => hit.authorization?.split(' ')[1])
    expect(tokens[0]).toBe(old.accessToken)
    expect(tokens[1]).toBe(old.accessToken)
    expect(tokens[2]).not.toBe(old.accessToken)
    expect(retries.events).toHaveLength(1)
    expect(w.as.successes()).toBe(2)
  })

  test('an invalid_token renewal then a nonce retry in one request: 3 attempts, 1 renewal', async () => {
    const w = await world()
    const dispatcher = dpopAgent(w)
    expect((await call(dispatcher, `${w.rs.origin}/warm`)).status).toBe(200)
    const old = w.rs.hits.at(-1)?.authorization?.split(' ')[1] as string
    w.rs.revoked.add(old)
    // When the RS refuses the old token, it also rotates its nonce.
    w.rs.before = (hit, outcome) => {
      if (outcome?.ok && hit.authorization === `DPoP ${old}`)
        return { error: 'invalid_token', rotate: true }
      return undefined
    }
    const retries = retryEvents()
    try {
      expect((await call(dispatcher, `${w.rs.origin}/order`)).status).toBe(200)
    } finally {
      retries.stop()
    }
    expect(w.rs.hits.filter((hit) => hit.url === '/order').map((hit) => hit.error)).toEqual([
      'invalid_token',
      'use_dpop_nonce',
      undefined,
    ])
    expect(retries.events).toHaveLength(1)
  })

  test('bounded: an RS that wants a new nonce every time → 2 attempts, the token kept (no renewal)', async () => {
    const w = await world()
    const dispatcher = dpopAgent(w)
    expect((await call(dispatcher, `${w.rs.origin}/warm`)).status).toBe(200)
    w.rs.before = () => ({ error: 'use_dpop_nonce', rotate: true })
    const result = await call(dispatcher, `${w.rs.origin}/greedy`)
    expect(result.status).toBe(401)
    expect(w.rs.statusesOf('/greedy')).toEqual([401, 401])
    expect(w.as.successes()).toBe(1)
  })

  test('bounded: an RS that refuses every token → at most 3 attempts (nonce, renewal), 1 renewal', async () => {
    const w = await world()
    const dispatcher = dpopAgent(w)
    w.rs.before = (_hit, outcome) => (outcome?.ok ? { error: 'invalid_token' } : undefined)
    const result = await call(dispatcher, `${w.rs.origin}/never-ok`)
    expect(result.status).toBe(401)
    expect(w.rs.hits.map((hit) => hit.error)).toEqual([
      'use_dpop_nonce',
      'invalid_token',
      'invalid_token',
    ])
    expect(w.as.successes()).toBe(2)
  })

  test("a caller's own DPoP and Authorization headers are replaced, not doubled", async () => {
    const w = await world()
    const dispatcher = dpopAgent(w)
    const result = await call(dispatcher, `${w.rs.origin}/own?x=1#y`, {
      headers: { DPoP: 'caller-proof', Authorization: 'Bearer caller' },
    })
    expect(result.status).toBe(200)
    for (const hit of w.rs.hits) {
      expect(hit.proofs).toHaveLength(1)
      expect(hit.proofs[0]).not.toBe('caller-proof')
      expect(hit.authorization).toMatch(/^DPoP \S+$/)
      expect(claimsOf(hit.proofs[0] as string).htu).toBe(`${w.rs.origin}/own`)
    }
  })

  // RFC 9449 §8.2/§9 and DESIGN.md: "DPoP-Nonce from every response updates a bounded
  // per-origin nonce cache". With retryOnUnauthorized: false (or a body that cannot be
  // replayed) a cached token takes the fast path, where no handler sees the response.
  test('retryOnUnauthorized: false still learns the RS nonce from every response', async () => {
    const w = await world()
    const dispatcher = dpopAgent(w, { retryOnUnauthorized: false })
    // Cold: no nonce yet, no retry allowed → the caller sees the 401 (expected).
    expect((await call(dispatcher, `${w.rs.origin}/n/1`)).status).toBe(401)
    expect((await call(dispatcher, `${w.rs.origin}/n/2`)).status).toBe(200)
    w.rsVerifier.rotateNonce()
    // The rotation costs this caller a 401 (no retry) …
    expect((await call(dispatcher, `${w.rs.origin}/n/3`)).status).toBe(401)
    // … but its response carried the new nonce, so the next request must succeed.
    expect((await call(dispatcher, `${w.rs.origin}/n/4`)).status).toBe(200)
  })

  // DESIGN.md: "A 401 with WWW-Authenticate: DPoP error="use_dpop_nonce" (or a 400 whose
  // WWW-Authenticate or JSON body says that error) retries once with the new nonce".
  test.each([
    [
      'the DPoP challenge in WWW-Authenticate',
      { 'www-authenticate': 'DPoP error="use_dpop_nonce"' },
      '',
    ],
    [
      'a JSON body {"error":"use_dpop_nonce"}',
      { 'content-type': 'application/json' },
      JSON.stringify({ error: 'use_dpop_nonce' }),
    ],
  ])('a 400 with %s and a DPoP-Nonce is retried with the nonce', async (_, headers, body) => {
    const w = await world()
    const dispatcher = dpopAgent(w)
    expect((await call(dispatcher, `${w.rs.origin}/warm`)).status).toBe(200)
    let first = true
    w.rs.before = () => {
      if (!first) return undefined
      first = false
      return {
        status: 400,
        headers: { ...headers, 'dpop-nonce': w.rsVerifier.rotateNonce() },
        body,
      }
    }
    expect((await call(dispatcher, `${w.rs.origin}/four-hundred`)).status).toBe(200)
    expect(w.rs.statusesOf('/four-hundred')).toEqual([400, 200])
  })

  test.each([
    ['another error', JSON.stringify({ error: 'invalid_request', error_description: 'no' })],
    ['not JSON after all', '<html>bad request</html>'],
    ['a body over 16 KiB', JSON.stringify({ error: 'use_dpop_nonce', pad: 'x'.repeat(40_000) })],
  ])(
    'a JSON 400 with a DPoP-Nonce but %s reaches the caller as it came, not retried',
    async (_, body) => {
      const w = await world()
      const dispatcher = dpopAgent(w)
      expect((await call(dispatcher, `${w.rs.origin}/warm`)).status).toBe(200)
      w.rs.before = () => ({
        status: 400,
        headers: { 'content-type': 'application/json', 'dpop-nonce': w.rsVerifier.rotateNonce() },
        body,
      })
      const response = await request(`${w.rs.origin}/held`, { dispatcher })
      expect(response.statusCode).toBe(400)
      expect(response.headers['content-type']).toBe('application/json')
      expect(await response.body.text()).toBe(body)
      expect(w.rs.statusesOf('/held')).toEqual([400])
    },
  )
})

describe('binding and shared stores', () => {
  test('one store, two caches with keys A and B: A’s token is a miss for B, which fetches its own', async () => {
    const w = await world()
    const keyB = newKey('EdDSA')
    const store = memoryStore()
    const cacheA = new TokenCache({ fetchToken: grant(w), store, dpop: { key: w.key.privateKey } })
    const cacheB = new TokenCache({ fetchToken: grant(w), store, dpop: { key: keyB.privateKey } })
    const tokenA = await cacheA.get()
    expect((await store.get('default'))?.accessToken).toBe(tokenA.accessToken)
    const tokenB = await cacheB.get()
    expect(tokenB.accessToken).not.toBe(tokenA.accessToken)
    expect(tokenA.dpopThumbprint).toBe(new DPoPKey({ key: w.key.privateKey }).thumbprint)
    expect(tokenB.dpopThumbprint).toBe(new DPoPKey({ key: keyB.privateKey }).thumbprint)
    expect(w.as.bindings.get(tokenB.accessToken)?.jkt).toBe(tokenB.dpopThumbprint)
    expect(w.as.successes()).toBe(2)
    // Both work through their interceptors: each proof's key is its token's bound key.
    const a = w.agent.compose(accessToken({ origins: w.rs.origin, tokens: cacheA }))
    const b = w.agent.compose(accessToken({ origins: w.rs.origin, tokens: cacheB }))
    expect((await call(a, `${w.rs.origin}/a`)).status).toBe(200)
    expect((await call(b, `${w.rs.origin}/b`)).status).toBe(200)
    // B's token is in the store now; a new cache with key A does not take it.
    const cacheA2 = new TokenCache({ fetchToken: grant(w), store, dpop: { key: w.key.privateKey } })
    const tokenA2 = await cacheA2.get()
    expect(tokenA2.accessToken).not.toBe(tokenB.accessToken)
    expect(tokenA2.dpopThumbprint).toBe(tokenA.dpopThumbprint)
    // … while one with key B does.
    const store2 = memoryStore()
    await store2.set('default', tokenB, 60_000)
    const cacheB2 = new TokenCache({
      fetchToken: grant(w),
      store: store2,
      dpop: { key: keyB.privateKey },
    })
    const before = w.as.successes()
    expect((await cacheB2.get()).accessToken).toBe(tokenB.accessToken)
    expect(w.as.successes()).toBe(before)
  })

  test('a Bearer token in a shared store: a miss for required DPoP, a hit with required: false; a bound token is a miss without DPoP', async () => {
    const w = await world()
    registerSecret('stored-bearer-token')
    // A shared store a Bearer-only replica filled: each cache below gets one of its own.
    const storeWithBearer = async () => {
      const store = memoryStore()
      const now = Date.now()
      const token = {
        accessToken: 'stored-bearer-token',
        tokenType: 'Bearer',
        expiresAt: now + 600_000,
        obtainedAt: now,
      }
      await store.set('default', token, 600_000)
      return store
    }
    const store = await storeWithBearer()
    const required = new TokenCache({
      fetchToken: grant(w),
      store,
      dpop: { key: w.key.privateKey },
    })
    expect((await required.get()).accessToken).not.toBe('stored-bearer-token')
    const store2 = await storeWithBearer()
    const optional = new TokenCache({
      fetchToken: grant(w),
      store: store2,
      dpop: { key: w.key.privateKey, required: false },
    })
    expect((await optional.get()).accessToken).toBe('stored-bearer-token')
    // A plain cache cannot use a DPoP-bound token: it could not prove the key.
    const bound = await required.get()
    const store3 = memoryStore()
    await store3.set('default', bound, 600_000)
    const plain = new TokenCache({
      fetchToken: async () => ({ accessToken: 'plain-bearer', tokenType: 'Bearer', expiresIn: 60 }),
      store: store3,
    })
    registerSecret('plain-bearer')
    expect((await plain.get()).accessToken).toBe('plain-bearer')
  })
})

test('the Redis codecs keep a stored token’s binding (dpopThumbprint, token_type DPoP)', async () => {
  const w = await world()
  const cache = new TokenCache({ fetchToken: grant(w), dpop: { key: w.key.privateKey } })
  const token = await cache.get()
  for (const codec of [plainCodec(), encryptedCodec(randomBytes(32))]) {
    const decoded = codec.decode(codec.encode(token, 'uat:default'), 'uat:default')
    expect(decoded?.dpopThumbprint).toBe(token.dpopThumbprint)
    expect(decoded?.tokenType).toBe('DPoP')
  }
})

describe('custom token sources', () => {
  test('FetchToken gets context.dpop (a DPoPSigner): its thumbprint and proofs work at the AS', async () => {
    const w = await world()
    let seen: DPoPSigner | undefined
    const fetchToken: FetchToken = async ({ dpop, signal }) => {
      seen = dpop
      if (dpop === undefined) throw new Error('no signer')
      let nonce: string | undefined
      for (let attempt = 0; attempt < 2; attempt++) {
        const response = await request(w.as.tokenUrl, {
          method: 'POST',
          signal,
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            dpop: dpop.proof('POST', w.as.tokenUrl, nonce === undefined ? {} : { nonce }),
          },
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            client_id: 'custom',
          }).toString(),
        })
        const json = (await response.body.json()) as Record<string, string>
        if (response.statusCode === 200) {
          return {
            accessToken: json.access_token as string,
            tokenType: json.token_type,
            expiresIn: 600,
          }
        }
        nonce = response.headers['dpop-nonce'] as string
      }
      throw new Error('no token')
    }
    const dispatcher = w.agent.compose(
      accessToken({ origins: w.rs.origin, fetchToken, dpop: { key: w.key.privateKey } }),
    )
    expect((await call(dispatcher, `${w.rs.origin}/custom`)).status).toBe(200)
    expect(seen?.thumbprint).toBe(
      await calculateJwkThumbprint(
        w.key.publicKey.export({ format: 'jwk' }) as Parameters<typeof calculateJwkThumbprint>[0],
      ),
    )
    expect(w.as.requests.map((r) => r.status)).toEqual([400, 200])
    // proof() with a token: ath, verifiable.
    const proof = seen?.proof('GET', `${w.rs.origin}/x?y=1`, { accessToken: 'abc' }) as string
    const { claims } = await verifyProof(proof, 'ES256')
    expect(claims).toMatchObject({ htm: 'GET', htu: `${w.rs.origin}/x`, ath: ath('abc') })
    expectNoMaterial(inspect(seen, { depth: 10, showHidden: true }), w.key)
  })

  test('without dpop, context.dpop is undefined', async () => {
    let context: Parameters<FetchToken>[0] | undefined
    const cache = new TokenCache({
      fetchToken: async (ctx) => {
        context = ctx
        return { accessToken: 'no-dpop-token', expiresIn: 60 }
      },
    })
    registerSecret('no-dpop-token')
    await cache.get()
    expect(context?.dpop).toBeUndefined()
  })
})

describe('no private key material and no token in events or errors', () => {
  test('a run with nonces, a renewal and a refused Bearer answer publishes neither', async () => {
    const w = await world()
    const published: string[] = []
    const listener = (message: unknown, name: string | symbol) =>
      published.push(`${String(name)} ${inspect(message, { depth: 8 })}`)
    for (const name of channelNames) subscribe(name, listener)
    const errors: unknown[] = []
    try {
      const dispatcher = dpopAgent(w)
      expect((await call(dispatcher, `${w.rs.origin}/s/1`)).status).toBe(200)
      const first = w.rs.hits.at(-1)?.authorization?.split(' ')[1] as string
      w.rs.revoked.add(first)
      w.rsVerifier.rotateNonce()
      expect((await call(dispatcher, `${w.rs.origin}/s/2`)).status).toBe(200)
      w.as.issue = 'Bearer'
      const cache = new TokenCache({
        fetchToken: grant(w),
        dpop: { key: w.key.privateKey },
      })
      errors.push(await cache.get().catch((caught: unknown) => caught))
      w.as.issue = 'DPoP'
      w.as.withholdNonce = true
      w.as.verifier.rotateNonce()
      const other = new TokenCache({ fetchToken: grant(w), dpop: { key: w.key.privateKey } })
      errors.push(await other.get().catch((caught: unknown) => caught))
    } finally {
      for (const name of channelNames) unsubscribe(name, listener)
    }
    expect(errors.every((error) => error instanceof TokenRequestError)).toBe(true)
    const tokens = [...w.as.bindings.keys()]
    expect(tokens.length).toBeGreaterThanOrEqual(3)
    const texts = [
      ...published,
      ...errors.map((error) => `${String(error)} ${inspect(error, { depth: 8 })}`),
    ]
    expect(published.length).toBeGreaterThan(0)
    for (const text of texts) {
      expectNoMaterial(text, w.key)
      for (const token of tokens) expect(text).not.toContain(token)
    }
  })
})

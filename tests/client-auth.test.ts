// The ClientAuth methods (RFC 6749 §2.3, RFC 7523 §2.2/§3, OIDC Core §9, RFC 8705 §2): what
// each adds to a token request, assertions verified with jose, construction-time errors, and
// the assertion methods through the token-request core against a loopback token endpoint that
// verifies them (and echoes them, to prove they are redacted from errors).
import { execFileSync } from 'node:child_process'
import {
  constants,
  createHash,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  verify,
  X509Certificate,
} from 'node:crypto'
import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { TokenRequestError } from '../lib/errors.js'
import {
  type ClientAuth,
  type ClientAuthRequest,
  clientSecretBasic,
  clientSecretPost,
  tlsClientAuth,
} from '../lib/oauth/client-auth.js'
import { jwkThumbprint, publicJwk } from '../lib/oauth/jwk.js'
import { randomId } from '../lib/oauth/jws.js'
import {
  clientAssertion,
  clientSecretJwt,
  federatedTokenFile,
  type PrivateKeyJwtOptions,
  privateKeyJwt,
} from '../lib/oauth/jwt-client-auth.js'
import { type TokenRequest, tokenRequest } from '../lib/oauth/token-request.js'

const jwtBearer = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const clientId = 'client-1'
const tokenEndpoint = 'https://as.example/oauth2/token'
const issuer = 'https://as.example/'

/** A token request as the core hands it to a ClientAuth. */
function fakeRequest(overrides: Partial<ClientAuthRequest> = {}): ClientAuthRequest {
  return {
    tokenUrl: new URL(tokenEndpoint),
    issuer,
    clientId,
    form: new URLSearchParams({ grant_type: 'client_credentials' }),
    headers: {},
    signal: new AbortController().signal,
    ...overrides,
  }
}

/** Runs a ClientAuth on a fresh request; resolves to what it added. */
async function apply(
  auth: ClientAuth,
  overrides: Partial<ClientAuthRequest> = {},
): Promise<{ form: Record<string, string>; headers: Record<string, string>; names: string[] }> {
  const request = fakeRequest(overrides)
  await auth(request)
  const form = Object.fromEntries(request.form)
  delete form.grant_type
  return { form, headers: request.headers, names: [...request.form.keys()] }
}

/** The assertion a JWT method added, after checking the rest of the form. */
async function assertionOf(
  auth: ClientAuth,
  overrides: Partial<ClientAuthRequest> = {},
): Promise<string> {
  const { form, headers, names } = await apply(auth, overrides)
  expect(names).toEqual(['grant_type', 'client_id', 'client_assertion_type', 'client_assertion'])
  expect(headers).toEqual({})
  expect(form.client_id).toBe(overrides.clientId ?? clientId)
  expect(form.client_assertion_type).toBe(jwtBearer)
  return form.client_assertion ?? ''
}

const b64url = (hex: string): string =>
  Buffer.from(hex.replaceAll(':', ''), 'hex').toString('base64url')

// Keys are generated per run; certificates by openssl, in a temporary directory removed after.
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const rsaPss = generateKeyPairSync('rsa-pss', { modulusLength: 2048 })
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' })
const ed25519 = generateKeyPairSync('ed25519')
const pem = (key: KeyObject): string => key.export({ format: 'pem', type: 'pkcs8' }).toString()
const jwk = (key: KeyObject): JsonWebKey => key.export({ format: 'jwk' })
const hmacSecret = 'a-client-secret-of-64-characters-0123456789abcdefghijklmnopqrstu'

let dir: string
let rsaCert: string
let rsaChain: string
let p256Cert: string

function selfSigned(key: KeyObject, name: string): string {
  const keyFile = join(dir, `${name}.key`)
  const certFile = join(dir, `${name}.crt`)
  writeFileSync(keyFile, pem(key), { mode: 0o600 })
  execFileSync('openssl', [
    'req',
    '-x509',
    '-new',
    '-key',
    keyFile,
    '-out',
    certFile,
    '-days',
    '1',
    '-subj',
    `/CN=${name}`,
    '-sha256',
  ])
  unlinkSync(keyFile)
  return execFileSync('openssl', ['x509', '-in', certFile, '-outform', 'PEM']).toString()
}

/** The SHA-1 and SHA-256 fingerprints openssl reports, base64url. */
function opensslThumbprints(certificate: string): { sha1: string; sha256: string } {
  const file = join(dir, `fp-${Math.random().toString(36).slice(2)}.crt`)
  writeFileSync(file, certificate)
  const fingerprint = (digest: string): string => {
    const out = execFileSync('openssl', ['x509', '-in', file, '-noout', '-fingerprint', digest])
    return b64url(out.toString().split('=')[1]?.trim() ?? '')
  }
  return { sha1: fingerprint('-sha1'), sha256: fingerprint('-sha256') }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'client-auth-test-'))
  rsaCert = selfSigned(rsa.privateKey, 'rsa-client')
  p256Cert = selfSigned(p256.privateKey, 'ec-client')
  rsaChain = `${rsaCert}${selfSigned(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, 'ca')}`
})

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('secret and TLS methods', () => {
  it('client_secret_basic adds an Authorization header only', async () => {
    const auth = clientSecretBasic('s3cret')
    expect(auth.method).toBe('client_secret_basic')
    expect(await apply(auth)).toEqual({
      form: {},
      headers: { authorization: `Basic ${Buffer.from('client-1:s3cret').toString('base64')}` },
      names: ['grant_type'],
    })
  })

  it('client_secret_post adds client_id and client_secret', async () => {
    const auth = clientSecretPost('s3cret')
    expect(auth.method).toBe('client_secret_post')
    expect(await apply(auth)).toEqual({
      form: { client_id: clientId, client_secret: 's3cret' },
      headers: {},
      names: ['grant_type', 'client_id', 'client_secret'],
    })
  })

  it('tls_client_auth sends client_id only (RFC 8705 §2)', async () => {
    const auth = tlsClientAuth()
    expect(auth.method).toBe('tls_client_auth')
    expect(await apply(auth)).toEqual({
      form: { client_id: clientId },
      headers: {},
      names: ['grant_type', 'client_id'],
    })
  })
})

describe('clientSecretJwt', () => {
  for (const alg of ['HS256', 'HS384', 'HS512'] as const) {
    it(`signs ${alg} assertions that jose verifies with the secret`, async () => {
      const auth = clientSecretJwt(hmacSecret, { alg })
      expect(auth.method).toBe('client_secret_jwt')
      const jwt = await assertionOf(auth)
      const { payload, protectedHeader } = await jwtVerify(
        jwt,
        new TextEncoder().encode(hmacSecret),
        {
          algorithms: [alg],
          issuer: clientId,
          subject: clientId,
          audience: tokenEndpoint,
          typ: 'JWT',
        },
      )
      expect(protectedHeader).toEqual({ alg, typ: 'JWT' })
      expect(Object.keys(payload)).toEqual(['iss', 'sub', 'aud', 'jti', 'iat', 'nbf', 'exp'])
    })
  }

  it('defaults to HS256', async () => {
    expect(decodeProtectedHeader(await assertionOf(clientSecretJwt(hmacSecret))).alg).toBe('HS256')
  })

  it('accepts a secret exactly as long as the hash (RFC 7518 §3.2)', async () => {
    const secret = 'x'.repeat(32)
    const jwt = await assertionOf(clientSecretJwt(secret))
    await expect(jwtVerify(jwt, new TextEncoder().encode(secret))).resolves.toBeTruthy()
  })
})

describe('privateKeyJwt', () => {
  const cases: {
    name: string
    options: () => PrivateKeyJwtOptions
    publicKey: KeyObject
    alg: string
    signatureBytes?: number
  }[] = [
    {
      name: 'RSA → RS256',
      options: () => ({ key: rsa.privateKey }),
      publicKey: rsa.publicKey,
      alg: 'RS256',
    },
    {
      name: 'RSA with PS256',
      options: () => ({ key: rsa.privateKey, alg: 'PS256' }),
      publicKey: rsa.publicKey,
      alg: 'PS256',
    },
    {
      name: 'P-256 → ES256',
      options: () => ({ key: p256.privateKey }),
      publicKey: p256.publicKey,
      alg: 'ES256',
      signatureBytes: 64,
    },
    {
      name: 'P-384 → ES384',
      options: () => ({ key: p384.privateKey }),
      publicKey: p384.publicKey,
      alg: 'ES384',
      signatureBytes: 96,
    },
    {
      name: 'Ed25519 → EdDSA',
      options: () => ({ key: ed25519.privateKey }),
      publicKey: ed25519.publicKey,
      alg: 'EdDSA',
      signatureBytes: 64,
    },
  ]
  for (const { name, options, publicKey, alg, signatureBytes } of cases) {
    it(`${name}: jose verifies it with the public key`, async () => {
      const auth = privateKeyJwt(options())
      expect(auth.method).toBe('private_key_jwt')
      const jwt = await assertionOf(auth)
      const { protectedHeader, payload } = await jwtVerify(jwt, publicKey, {
        algorithms: [alg],
        issuer: clientId,
        subject: clientId,
        audience: tokenEndpoint,
        typ: 'JWT',
        requiredClaims: ['jti', 'iat', 'nbf', 'exp'],
      })
      expect(protectedHeader).toEqual({ alg, typ: 'JWT' })
      expect(payload.iss).toBe(clientId)
      // ECDSA in IEEE P1363 form (R || S), as RFC 7518 §3.4 requires; jose would refuse DER.
      const signature = Buffer.from(jwt.split('.')[2] ?? '', 'base64url')
      if (signatureBytes !== undefined) expect(signature.length).toBe(signatureBytes)
    })
  }

  it('RSA-PSS keys → PS256 (node:crypto verifies: jose cannot import an RSA-PSS KeyObject)', async () => {
    const jwt = await assertionOf(privateKeyJwt({ key: rsaPss.privateKey }))
    const [header, payload, signature] = jwt.split('.') as [string, string, string]
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'PS256', typ: 'JWT' })
    expect(
      verify(
        'sha256',
        Buffer.from(`${header}.${payload}`),
        { key: rsaPss.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
        Buffer.from(signature, 'base64url'),
      ),
    ).toBe(true)
    expect(decodeJwt(jwt)).toMatchObject({ iss: clientId, sub: clientId, aud: tokenEndpoint })
  })

  it('PS256 uses a salt as long as the digest (RFC 7518 §3.5)', async () => {
    const jwt = await assertionOf(privateKeyJwt({ key: rsa.privateKey, alg: 'PS256' }))
    const [header, payload, signature] = jwt.split('.') as [string, string, string]
    const check = (saltLength: number): boolean =>
      verify(
        'sha256',
        Buffer.from(`${header}.${payload}`),
        { key: rsa.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength },
        Buffer.from(signature, 'base64url'),
      )
    expect(check(32)).toBe(true)
    expect(check(222)).toBe(false)
  })

  it('takes the key as a KeyObject, a JWK or a PEM string (a combined key + certificate file too)', async () => {
    for (const key of [
      p256.privateKey,
      jwk(p256.privateKey),
      pem(p256.privateKey),
      `${p256Cert}${pem(p256.privateKey)}`,
    ]) {
      const jwt = await assertionOf(privateKeyJwt({ key }))
      await expect(jwtVerify(jwt, p256.publicKey, { algorithms: ['ES256'] })).resolves.toBeTruthy()
    }
  })

  it('sends kid in the header', async () => {
    const jwt = await assertionOf(privateKeyJwt({ key: ed25519.privateKey, kid: 'key-2025' }))
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'EdDSA', typ: 'JWT', kid: 'key-2025' })
  })

  describe('certificate thumbprints (RFC 7515 §4.1.7-8)', () => {
    it("x5t#S256 by default: the leaf certificate's SHA-256 thumbprint", async () => {
      const jwt = await assertionOf(privateKeyJwt({ key: rsa.privateKey, certificate: rsaCert }))
      const expected = opensslThumbprints(rsaCert).sha256
      expect(expected).toBe(b64url(new X509Certificate(rsaCert).fingerprint256))
      expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'RS256', typ: 'JWT', 'x5t#S256': expected })
      await expect(jwtVerify(jwt, rsa.publicKey)).resolves.toBeTruthy()
    })

    it("x5t: 'sha1' sends the SHA-1 thumbprint only; 'both' sends both", async () => {
      const { sha1, sha256 } = opensslThumbprints(rsaCert)
      const only = await assertionOf(
        privateKeyJwt({ key: rsa.privateKey, certificate: rsaCert, x5t: 'sha1' }),
      )
      expect(decodeProtectedHeader(only)).toEqual({ alg: 'RS256', typ: 'JWT', x5t: sha1 })
      const both = await assertionOf(
        privateKeyJwt({ key: rsa.privateKey, certificate: rsaCert, x5t: 'both', kid: 'k' }),
      )
      expect(decodeProtectedHeader(both)).toEqual({
        alg: 'RS256',
        typ: 'JWT',
        kid: 'k',
        x5t: sha1,
        'x5t#S256': sha256,
      })
    })

    it('takes a chain, leaf first, as one PEM string or an array', async () => {
      const { sha256 } = opensslThumbprints(rsaCert)
      const ca = rsaChain.slice(rsaCert.length)
      for (const certificate of [rsaChain, [rsaCert, ca]]) {
        const jwt = await assertionOf(privateKeyJwt({ key: rsa.privateKey, certificate }))
        expect(decodeProtectedHeader(jwt)['x5t#S256']).toBe(sha256)
      }
    })

    it('EC keys with a certificate', async () => {
      const jwt = await assertionOf(privateKeyJwt({ key: p256.privateKey, certificate: p256Cert }))
      expect(decodeProtectedHeader(jwt)['x5t#S256']).toBe(opensslThumbprints(p256Cert).sha256)
    })
  })
})

describe('assertion claims (RFC 7523 §3, OIDC Core §9)', () => {
  const methods: [string, () => ClientAuth][] = [
    ['clientSecretJwt', () => clientSecretJwt(hmacSecret)],
    ['privateKeyJwt', () => privateKeyJwt({ key: p256.privateKey })],
  ]
  for (const [name, make] of methods) {
    it(`${name}: iss = sub = client_id, a fresh 128-bit jti and a fresh signature every call`, async () => {
      const auth = make()
      const jwts = await Promise.all([1, 2, 3].map(() => assertionOf(auth)))
      const ids = jwts.map((jwt) => decodeJwt(jwt).jti)
      expect(new Set(ids).size).toBe(3)
      for (const id of ids) {
        expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/)
        expect(Buffer.from(id ?? '', 'base64url').length).toBe(16)
      }
      expect(new Set(jwts).size).toBe(3)
      const claims = decodeJwt(await assertionOf(auth, { clientId: 'other client' }))
      expect([claims.iss, claims.sub]).toEqual(['other client', 'other client'])
    })

    it(`${name}: iat now, nbf = iat, exp = iat + 60 by default, or + lifetime`, async () => {
      const before = Math.floor(Date.now() / 1000)
      const claims = decodeJwt(await assertionOf(make()))
      const after = Math.floor(Date.now() / 1000)
      expect(claims.iat).toBeGreaterThanOrEqual(before)
      expect(claims.iat).toBeLessThanOrEqual(after)
      expect(claims.nbf).toBe(claims.iat)
      expect(claims.exp).toBe((claims.iat ?? 0) + 60)
      const long =
        name === 'clientSecretJwt'
          ? clientSecretJwt(hmacSecret, { lifetime: 300 })
          : privateKeyJwt({ key: p256.privateKey, lifetime: 300 })
      const longClaims = decodeJwt(await assertionOf(long))
      expect((longClaims.exp ?? 0) - (longClaims.iat ?? 0)).toBe(300)
    })
  }

  it('aud: the token endpoint by default, as one string', async () => {
    const tokenUrl = new URL('https://login.example/tenant/oauth2/v2.0/token?api-version=2')
    for (const audience of [undefined, 'token_endpoint'] as const) {
      const claims = decodeJwt(
        await assertionOf(privateKeyJwt({ key: p256.privateKey, audience }), { tokenUrl }),
      )
      expect(claims.aud).toBe(tokenUrl.href)
    }
  })

  it("aud: 'issuer' is the issuer as configured; any other string as is", async () => {
    const auth = privateKeyJwt({ key: p256.privateKey, audience: 'issuer' })
    expect(decodeJwt(await assertionOf(auth)).aud).toBe(issuer)
    expect(decodeJwt(await assertionOf(auth, { issuer: 'https://id.example/realms/x' })).aud).toBe(
      'https://id.example/realms/x',
    )
    const fixed = clientSecretJwt(hmacSecret, { audience: 'https://as.example' })
    expect(decodeJwt(await assertionOf(fixed)).aud).toBe('https://as.example')
  })

  it("aud: 'issuer' without a known issuer is an error, and nothing is added", async () => {
    const auth = privateKeyJwt({ key: p256.privateKey, audience: 'issuer' })
    const request = fakeRequest({ issuer: undefined })
    let caught: unknown
    try {
      await auth(request)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(TokenRequestError)
    expect((caught as Error).message).toMatch(/audience 'issuer' needs an issuer/)
    expect([...request.form.keys()]).toEqual(['grant_type'])
  })
})

describe('clientAssertion', () => {
  it('asks for an assertion on every call with { tokenUrl, issuer, clientId, signal }', async () => {
    const seen: unknown[] = []
    let n = 0
    const auth = clientAssertion(async (request) => {
      seen.push(request)
      return `assertion-${++n}`
    })
    expect(auth.method).toBe('private_key_jwt')
    const controller = new AbortController()
    expect(await apply(auth, { signal: controller.signal })).toEqual({
      form: {
        client_id: clientId,
        client_assertion_type: jwtBearer,
        client_assertion: 'assertion-1',
      },
      headers: {},
      names: ['grant_type', 'client_id', 'client_assertion_type', 'client_assertion'],
    })
    expect((await apply(auth)).form.client_assertion).toBe('assertion-2')
    const first = seen[0] as Record<string, unknown>
    expect(Object.keys(first).sort()).toEqual(['clientId', 'issuer', 'signal', 'tokenUrl'])
    expect(first).toMatchObject({ issuer, clientId, signal: controller.signal })
    expect(String(first.tokenUrl)).toBe(tokenEndpoint)
  })

  it('takes a synchronous function', async () => {
    const { form } = await apply(clientAssertion(() => 'sync-assertion'))
    expect(form.client_assertion).toBe('sync-assertion')
  })

  it('an empty or non-string answer, or a throw, is an error and nothing is added', async () => {
    const cause = new Error('KMS unavailable')
    for (const get of [() => '', () => 42 as unknown as string, () => Promise.reject(cause)]) {
      const request = fakeRequest()
      const error = await Promise.resolve(clientAssertion(get)(request)).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(TokenRequestError)
      expect([...request.form.keys()]).toEqual(['grant_type'])
    }
    const error = await Promise.resolve(
      clientAssertion(() => Promise.reject(cause))(fakeRequest()),
    ).catch((e: unknown) => e)
    expect((error as Error).cause).toBe(cause)
  })

  it("an aborted request rethrows the signal's reason", async () => {
    const controller = new AbortController()
    const reason = new Error('stop')
    const auth = clientAssertion(({ signal }) => {
      controller.abort(reason)
      throw signal.reason
    })
    await expect(auth(fakeRequest({ signal: controller.signal }))).rejects.toBe(reason)
  })
})

describe('federatedTokenFile', () => {
  let tokenDir: string
  const saved = process.env.AZURE_FEDERATED_TOKEN_FILE
  beforeAll(() => {
    tokenDir = mkdtempSync(join(tmpdir(), 'federated-token-'))
  })
  afterEach(() => {
    if (saved === undefined) delete process.env.AZURE_FEDERATED_TOKEN_FILE
    else process.env.AZURE_FEDERATED_TOKEN_FILE = saved
  })
  afterAll(() => {
    rmSync(tokenDir, { recursive: true, force: true })
  })

  it('re-reads the file on every call (projected tokens rotate), trimmed', async () => {
    const file = join(tokenDir, 'token')
    writeFileSync(file, '  eyJ.first.token\n')
    const auth = federatedTokenFile(file)
    expect(auth.method).toBe('private_key_jwt')
    expect(await apply(auth)).toEqual({
      form: {
        client_id: clientId,
        client_assertion_type: jwtBearer,
        client_assertion: 'eyJ.first.token',
      },
      headers: {},
      names: ['grant_type', 'client_id', 'client_assertion_type', 'client_assertion'],
    })
    writeFileSync(file, 'eyJ.second.token')
    expect((await apply(auth)).form.client_assertion).toBe('eyJ.second.token')
    // The kubelet swaps the file in atomically (a rename of its ..data symlink).
    writeFileSync(join(tokenDir, 'next'), 'eyJ.third.token\n')
    renameSync(join(tokenDir, 'next'), file)
    expect((await apply(auth)).form.client_assertion).toBe('eyJ.third.token')
  })

  it('defaults to AZURE_FEDERATED_TOKEN_FILE', async () => {
    const file = join(tokenDir, 'azure-token')
    writeFileSync(file, 'eyJ.azure.token')
    process.env.AZURE_FEDERATED_TOKEN_FILE = file
    expect((await apply(federatedTokenFile())).form.client_assertion).toBe('eyJ.azure.token')
  })

  it('a file gone or empty when called is an error, and nothing is added', async () => {
    const file = join(tokenDir, 'vanishing')
    writeFileSync(file, 'eyJ.token')
    const auth = federatedTokenFile(file)
    for (const content of [' \n\t', undefined]) {
      if (content === undefined) unlinkSync(file)
      else writeFileSync(file, content)
      const request = fakeRequest()
      const error = await Promise.resolve(auth(request)).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(TokenRequestError)
      expect((error as Error).message).toMatch(
        content === undefined
          ? /could not be read \(ENOENT\); nothing was sent/
          : /is empty; nothing was sent/,
      )
      expect([...request.form.keys()]).toEqual(['grant_type'])
    }
  })

  it('construction: no path and no AZURE_FEDERATED_TOKEN_FILE, a missing file, a directory', () => {
    delete process.env.AZURE_FEDERATED_TOKEN_FILE
    expect(() => federatedTokenFile()).toThrow(/needs a path, or AZURE_FEDERATED_TOKEN_FILE set/)
    expect(() => federatedTokenFile('')).toThrow(/non-empty string/)
    expect(() => federatedTokenFile(join(tokenDir, 'nope'))).toThrow(/cannot be read \(ENOENT\)/)
    const sub = join(tokenDir, 'sub')
    mkdirSync(sub)
    expect(() => federatedTokenFile(sub)).toThrow(/is a directory/)
  })
})

describe('construction-time errors: clear, never quoting key material', () => {
  const rsaPem = pem(rsa.privateKey)
  const rsaJwk = jwk(rsa.privateKey)
  /** Pieces of every private key and secret used below, none of which may show in a message. */
  const material = [
    rsaPem.split('\n')[1] ?? '',
    rsaJwk.d ?? '',
    (jwk(p256.privateKey).d as string).slice(0, 12),
    hmacSecret.slice(0, 12),
    'short-secret',
  ]
  const fails = (make: () => unknown, pattern: RegExp): void => {
    let caught: unknown
    try {
      make()
    } catch (error) {
      caught = error
    }
    expect(caught, `expected ${pattern}`).toBeInstanceOf(TypeError)
    const error = caught as Error
    expect(error.message).toMatch(pattern)
    expect(error.cause).toBeUndefined()
    for (const piece of material) expect(error.message).not.toContain(piece)
  }

  it('a missing key', () => {
    fails(
      () => privateKeyJwt(undefined as unknown as PrivateKeyJwtOptions),
      /needs options with a key/,
    )
    fails(() => privateKeyJwt({} as PrivateKeyJwtOptions), /a private key is required/)
    fails(() => privateKeyJwt({ key: '' }), /a private key is required/)
  })

  it('a public key, a public JWK, a public PEM or a certificate where a private key is needed', () => {
    fails(() => privateKeyJwt({ key: rsa.publicKey }), /public key; a private key is needed/)
    fails(() => privateKeyJwt({ key: jwk(p256.publicKey) }), /public key \(no "d"\)/)
    fails(
      () =>
        privateKeyJwt({ key: p256.publicKey.export({ format: 'pem', type: 'spki' }).toString() }),
      /public key or certificate; a private key is needed/,
    )
    fails(
      () =>
        privateKeyJwt({ key: rsa.publicKey.export({ format: 'pem', type: 'pkcs1' }).toString() }),
      /public key or certificate/,
    )
    fails(() => privateKeyJwt({ key: rsaCert }), /public key or certificate/)
  })

  it('a secret key where a private key is needed', () => {
    fails(
      () => privateKeyJwt({ key: createSecretKey(Buffer.alloc(32, 1)) }),
      /secret \(symmetric\) key/,
    )
    fails(() => privateKeyJwt({ key: { kty: 'oct', k: 'AAAA' } }), /secret \(oct\) key/)
  })

  it('an unreadable or encrypted PEM, a string that is not PEM, a malformed JWK, a Buffer', () => {
    const corrupt = rsaPem.replace(/\n[A-Za-z0-9+/]{10}/, '\n!!!!!!!!!!')
    fails(
      () => privateKeyJwt({ key: corrupt }),
      /PEM could not be read as a private key \(ERR_OSSL/,
    )
    fails(() => privateKeyJwt({ key: rsaPem.split('\n').slice(1, -2).join('') }), /must be PEM/)
    fails(() => privateKeyJwt({ key: '/etc/keys/client.pem' }), /to use a file, read it first/)
    const encrypted = rsa.privateKey
      .export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pw' })
      .toString()
    fails(() => privateKeyJwt({ key: encrypted }), /encrypted; decrypt it with createPrivateKey/)
    // Node's own message would quote the bad member; ours gives only its code.
    fails(
      () => privateKeyJwt({ key: { ...rsaJwk, n: 42 as unknown as string } }),
      /JWK could not be read as a private key \(ERR_INVALID_ARG_TYPE\)/,
    )
    fails(
      () => privateKeyJwt({ key: Buffer.from(rsaPem) as unknown as string }),
      /a Buffer is not accepted/,
    )
  })

  it('an alg that does not fit the key, or is not supported', () => {
    fails(
      () => privateKeyJwt({ key: rsa.privateKey, alg: 'ES256' }),
      /alg ES256 does not fit a RSA key/,
    )
    fails(
      () => privateKeyJwt({ key: p256.privateKey, alg: 'RS256' }),
      /alg RS256 does not fit a EC key/,
    )
    fails(
      () => privateKeyJwt({ key: p256.privateKey, alg: 'ES384' }),
      /ES384 does not fit a key on curve prime256v1/,
    )
    fails(
      () => privateKeyJwt({ key: p256.privateKey, alg: 'EdDSA' }),
      /EdDSA does not fit a EC key/,
    )
    fails(
      () => privateKeyJwt({ key: ed25519.privateKey, alg: 'ES256' }),
      /does not fit a ED25519 key/,
    )
    fails(
      () => privateKeyJwt({ key: rsaPss.privateKey, alg: 'RS256' }),
      /RS256 does not fit a RSA-PSS key/,
    )
    fails(
      () => privateKeyJwt({ key: rsa.privateKey, alg: 'HS256' as 'RS256' }),
      /alg HS256 does not fit a RSA key/,
    )
    fails(
      () => privateKeyJwt({ key: rsa.privateKey, alg: 'none' as 'RS256' }),
      /alg "none" is not supported/,
    )
    fails(
      () => clientSecretJwt(hmacSecret, { alg: 'RS256' as 'HS256' }),
      /RS256 does not fit a secret key/,
    )
  })

  it('keys that are not supported: RSA under 2048 bits, secp256k1, X25519', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey
    fails(() => privateKeyJwt({ key: small }), /at least 2048 bits/)
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey
    fails(() => privateKeyJwt({ key: k1 }), /curve secp256k1 is not supported/)
    const x25519 = generateKeyPairSync('x25519').privateKey
    fails(() => privateKeyJwt({ key: x25519 }), /key type x25519 is not supported/)
  })

  it('an HMAC secret shorter than the hash (RFC 7518 §3.2), or empty', () => {
    fails(() => clientSecretJwt('short-secret'), /HS256 needs a secret of at least 32 bytes/)
    fails(() => clientSecretJwt('x'.repeat(31)), /at least 32 bytes/)
    fails(
      () => clientSecretJwt('x'.repeat(47), { alg: 'HS384' }),
      /HS384 needs a secret of at least 48 bytes/,
    )
    fails(
      () => clientSecretJwt('x'.repeat(63), { alg: 'HS512' }),
      /HS512 needs a secret of at least 64 bytes/,
    )
    fails(() => clientSecretJwt(''), /non-empty string/)
    // UTF-8 octets count: 16 two-byte characters are 32 bytes.
    expect(() => clientSecretJwt('ü'.repeat(16))).not.toThrow()
  })

  it('a certificate that does not match the key, is not PEM, or x5t without one', () => {
    fails(
      () => privateKeyJwt({ key: rsa.privateKey, certificate: p256Cert }),
      /certificate's public key does not match the private key/,
    )
    fails(
      () => privateKeyJwt({ key: p256.privateKey, certificate: rsaCert }),
      /does not match the private key/,
    )
    fails(
      () => privateKeyJwt({ key: rsa.privateKey, certificate: 'MIIB…' }),
      /must be a PEM certificate/,
    )
    fails(
      () =>
        privateKeyJwt({
          key: rsa.privateKey,
          certificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----',
        }),
      /certificate could not be read/,
    )
    fails(() => privateKeyJwt({ key: rsa.privateKey, x5t: 'sha1' }), /x5t needs a certificate/)
    fails(
      () => privateKeyJwt({ key: rsa.privateKey, certificate: rsaCert, x5t: 'md5' as 'sha1' }),
      /x5t must be/,
    )
  })

  it('a bad kid, audience or lifetime; clientAssertion without a function', () => {
    fails(() => privateKeyJwt({ key: p256.privateKey, kid: '' }), /kid must be a non-empty string/)
    fails(() => privateKeyJwt({ key: p256.privateKey, audience: '' }), /audience must be/)
    fails(
      () => clientSecretJwt(hmacSecret, { audience: ['a', 'b'] as unknown as string }),
      /audience must be .* \(one audience\)/,
    )
    for (const lifetime of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      fails(
        () => privateKeyJwt({ key: p256.privateKey, lifetime }),
        /lifetime must be a positive whole number/,
      )
    }
    fails(() => clientAssertion('eyJ...' as unknown as () => string), /needs a function/)
  })
})

describe('provider conventions: the exact header and claims', () => {
  const shape = (jwt: string) => {
    const claims = decodeJwt(jwt)
    return {
      header: decodeProtectedHeader(jwt),
      claims: Object.keys(claims),
      aud: claims.aud,
      lifetime: (claims.exp ?? 0) - (claims.iat ?? 0),
    }
  }

  it('Entra ID certificate credential: PS256 + x5t#S256, aud = the v2.0 token endpoint', async () => {
    const tenant = '72f988bf-86f1-41af-91ab-2d7cd011db47'
    const tokenUrl = new URL(`https://login.microsoftonline.com/${tenant}/oauth2/v2.0/token`)
    const auth = privateKeyJwt({ key: pem(rsa.privateKey), alg: 'PS256', certificate: rsaCert })
    const jwt = await assertionOf(auth, {
      tokenUrl,
      issuer: `https://login.microsoftonline.com/${tenant}/v2.0`,
      clientId: '11111111-2222-3333-4444-555555555555',
    })
    expect(shape(jwt)).toEqual({
      header: { alg: 'PS256', typ: 'JWT', 'x5t#S256': opensslThumbprints(rsaCert).sha256 },
      claims: ['iss', 'sub', 'aud', 'jti', 'iat', 'nbf', 'exp'],
      aud: tokenUrl.href,
      lifetime: 60,
    })
    await expect(jwtVerify(jwt, rsa.publicKey, { algorithms: ['PS256'] })).resolves.toBeTruthy()
  })

  it("Entra ID's older convention: RS256 + SHA-1 x5t", async () => {
    const auth = privateKeyJwt({ key: rsa.privateKey, certificate: rsaCert, x5t: 'sha1' })
    expect(shape(await assertionOf(auth)).header).toEqual({
      alg: 'RS256',
      typ: 'JWT',
      x5t: opensslThumbprints(rsaCert).sha1,
    })
  })

  it('Auth0 Private Key JWT: aud = the tenant URL with its trailing slash, kid', async () => {
    const tenant = 'https://example-tenant.eu.auth0.com/'
    const auth = privateKeyJwt({
      key: rsa.privateKey,
      kid: 'auth0-credential-1',
      audience: 'issuer',
    })
    const jwt = await assertionOf(auth, {
      tokenUrl: new URL('oauth/token', tenant),
      issuer: tenant,
    })
    expect(shape(jwt)).toEqual({
      header: { alg: 'RS256', typ: 'JWT', kid: 'auth0-credential-1' },
      claims: ['iss', 'sub', 'aud', 'jti', 'iat', 'nbf', 'exp'],
      aud: 'https://example-tenant.eu.auth0.com/',
      lifetime: 60,
    })
  })

  it('Okta private_key_jwt: aud = the token endpoint, kid', async () => {
    const tokenUrl = new URL('https://dev-1234.okta.com/oauth2/default/v1/token')
    const auth = privateKeyJwt({ key: jwk(p256.privateKey), kid: 'okta-key' })
    expect(shape(await assertionOf(auth, { tokenUrl }))).toMatchObject({
      header: { alg: 'ES256', typ: 'JWT', kid: 'okta-key' },
      aud: tokenUrl.href,
    })
  })
})

describe('jws: public JWK and RFC 7638 thumbprint (for DPoP), random ids', () => {
  it('randomId: 128 bits, base64url, never repeated across refills of its pool', () => {
    const ids = Array.from({ length: 1000 }, randomId)
    expect(new Set(ids).size).toBe(1000)
    for (const id of ids) expect(Buffer.from(id, 'base64url').toString('base64url')).toBe(id)
    expect(ids.every((id) => /^[A-Za-z0-9_-]{22}$/.test(id))).toBe(true)
  })

  it('gives the public members only, and the RFC 7638 §3.1 example thumbprint', () => {
    for (const { privateKey } of [p256, ed25519, rsa]) {
      const publicOnly = publicJwk(privateKey)
      expect(publicOnly).not.toHaveProperty('d')
      expect(publicOnly).toEqual(
        Object.fromEntries(
          Object.entries(createPublicKey(privateKey).export({ format: 'jwk' })).filter(([name]) =>
            ['kty', 'crv', 'x', 'y', 'n', 'e'].includes(name),
          ),
        ),
      )
    }
    // RFC 7638 §3.1.
    const example: JsonWebKey = {
      kty: 'RSA',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
      e: 'AQAB',
      alg: 'RS256',
      kid: '2011-04-29',
    }
    expect(jwkThumbprint(example)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs')
    const sha = createHash('sha256')
    const { crv, kty, x, y } = publicJwk(p256.privateKey)
    expect(jwkThumbprint(publicJwk(p256.privateKey))).toBe(
      sha.update(JSON.stringify({ crv, kty, x, y })).digest('base64url'),
    )
  })
})

describe('through the token-request core, against a token endpoint that verifies assertions', () => {
  /** Public keys of the registered clients, by client_id; HMAC secrets for client_secret_jwt. */
  const registered = new Map<string, KeyObject | Uint8Array>([
    ['pk-rsa', rsa.publicKey],
    ['pk-es256', p256.publicKey],
    ['pk-eddsa', ed25519.publicKey],
    ['secret-jwt', new TextEncoder().encode(hmacSecret)],
  ])
  const spent = new Set<string>()
  const audiences: unknown[] = []
  let server: Server
  let tokenUrl: string
  let issuerUrl: string

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (chunk: string) => {
        body += chunk
      })
      req.on('end', async () => {
        const form = new URLSearchParams(body)
        const answer = (status: number, json: object): void => {
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json))
        }
        const assertion = form.get('client_assertion') ?? ''
        if (form.get('scope') === 'echo') {
          // A server that quotes the request back: the assertion must not reach the error.
          answer(400, { error: 'invalid_client', error_description: `bad assertion ${assertion}` })
          return
        }
        const key = registered.get(form.get('client_id') ?? '')
        try {
          if (form.get('client_assertion_type') !== jwtBearer || key === undefined) {
            throw new Error('not a registered assertion client')
          }
          const { payload } = await jwtVerify(assertion, key, {
            issuer: form.get('client_id') ?? '',
            subject: form.get('client_id') ?? '',
            // RFC 7523 §3: the token endpoint or the issuer identify this server.
            audience: [tokenUrl, issuerUrl],
            requiredClaims: ['jti', 'exp'],
            maxTokenAge: '5m',
          })
          if (Array.isArray(payload.aud)) throw new Error('aud must be one string')
          audiences.push(payload.aud)
          // OIDC Core §9: a jti is used once.
          if (spent.has(payload.jti ?? '')) throw new Error('jti replayed')
          spent.add(payload.jti ?? '')
          answer(200, { access_token: `at-${payload.jti}`, token_type: 'Bearer', expires_in: 300 })
        } catch (error) {
          answer(401, { error: 'invalid_client', error_description: (error as Error).message })
        }
      })
    })
    server.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    issuerUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
    tokenUrl = `${issuerUrl}oauth/token`
  })

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve))
  })

  /** The token-request core for one client (the one place that knows its options' shape). */
  const core = (clientId: string, clientAuth: ClientAuth, issuer?: string): TokenRequest =>
    tokenRequest({ endpoint: { url: new URL(tokenUrl), issuer }, clientId, clientAuth })
  const grant = new URLSearchParams({ grant_type: 'client_credentials' })
  /** A token fetch's context, as the core takes it. */
  const context = (): { signal: AbortSignal } => ({ signal: AbortSignal.timeout(10_000) })

  const clients: [string, () => ClientAuth][] = [
    [
      'pk-rsa',
      () => privateKeyJwt({ key: pem(rsa.privateKey), alg: 'PS256', certificate: rsaCert }),
    ],
    ['pk-es256', () => privateKeyJwt({ key: jwk(p256.privateKey), kid: 'k1' })],
    ['pk-eddsa', () => privateKeyJwt({ key: ed25519.privateKey })],
    ['secret-jwt', () => clientSecretJwt(hmacSecret, { alg: 'HS512' })],
  ]
  for (const [id, make] of clients) {
    it(`${id}: accepted, and every request (a retry too) carries a fresh assertion`, async () => {
      const send = core(id, make())
      const first = await send(grant, context())
      const second = await send(grant, context())
      expect(first.accessToken).toMatch(/^at-/)
      expect(second.accessToken).not.toBe(first.accessToken)
    })
  }

  it("audience 'issuer' gets the issuer the core was given; the default, the token endpoint", async () => {
    audiences.length = 0
    const toIssuer = privateKeyJwt({ key: p256.privateKey, audience: 'issuer' })
    await core('pk-es256', toIssuer, issuerUrl)(grant, context())
    await core('pk-es256', privateKeyJwt({ key: p256.privateKey }), issuerUrl)(grant, context())
    expect(audiences).toEqual([issuerUrl, tokenUrl])
    const error = await core('pk-es256', toIssuer)(grant, context()).catch((e: unknown) => e)
    expect((error as Error).message).toMatch(/audience 'issuer' needs an issuer/)
  })

  it('the server refuses a replayed assertion (what a cached assertion would get)', async () => {
    let last = ''
    const replaying = clientAssertion(() => last)
    const fresh = privateKeyJwt({ key: p256.privateKey })
    const capture = clientAssertion(async (request) => {
      const form = new URLSearchParams()
      fresh({ ...request, form, headers: {} })
      last = form.get('client_assertion') ?? ''
      return last
    })
    await core('pk-es256', capture)(grant, context())
    const error = await core('pk-es256', replaying)(grant, context()).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TokenRequestError)
    expect((error as TokenRequestError).status).toBe(401)
  })

  it('a federated token file and a clientAssertion function reach the endpoint', async () => {
    const sign = privateKeyJwt({ key: ed25519.privateKey, audience: 'token_endpoint' })
    const makeAssertion = (request: ClientAuthRequest): string => {
      const form = new URLSearchParams()
      sign({ ...request, form })
      return form.get('client_assertion') ?? ''
    }
    const fileDir = mkdtempSync(join(tmpdir(), 'federated-e2e-'))
    try {
      const file = join(fileDir, 'token')
      const request = fakeRequest({ tokenUrl: new URL(tokenUrl), clientId: 'pk-eddsa' })
      writeFileSync(file, `${makeAssertion(request)}\n`)
      const fromFile = core('pk-eddsa', federatedTokenFile(file))
      expect((await fromFile(grant, context())).accessToken).toMatch(/^at-/)
      writeFileSync(file, makeAssertion(request))
      expect((await fromFile(grant, context())).accessToken).toMatch(/^at-/)
    } finally {
      rmSync(fileDir, { recursive: true, force: true })
    }
    const fromFunction = core(
      'pk-eddsa',
      clientAssertion(({ tokenUrl: url, clientId: id, signal: s }) =>
        makeAssertion(fakeRequest({ tokenUrl: url, clientId: id, signal: s })),
      ),
    )
    expect((await fromFunction(grant, context())).accessToken).toMatch(/^at-/)
  })

  it('a wrong audience or key is refused by the endpoint', async () => {
    const wrongAud = privateKeyJwt({ key: p256.privateKey, audience: 'https://elsewhere.example' })
    const wrongKey = privateKeyJwt({
      key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    })
    for (const clientAuth of [wrongAud, wrongKey]) {
      const error = await core('pk-es256', clientAuth)(grant, context()).catch((e: unknown) => e)
      expect((error as TokenRequestError).status).toBe(401)
    }
  })

  it('an assertion the endpoint echoes is redacted from the error', async () => {
    const sent: string[] = []
    const inner = privateKeyJwt({ key: p256.privateKey })
    const recording: ClientAuth = (request) => {
      inner(request)
      sent.push(request.form.get('client_assertion') ?? '')
    }
    const send = core('pk-es256', recording)
    const error = (await send(
      new URLSearchParams({ grant_type: 'client_credentials', scope: 'echo' }),
      context(),
    ).catch((e: unknown) => e)) as TokenRequestError
    expect(error).toBeInstanceOf(TokenRequestError)
    expect(error.error).toBe('invalid_client')
    expect(sent).toHaveLength(1)
    const assertion = sent[0] ?? ''
    expect(assertion.split('.')).toHaveLength(3)
    for (const text of [error.message, error.errorDescription ?? '', JSON.stringify(error)]) {
      expect(text).not.toContain(assertion)
      // Not even its signature alone.
      expect(text).not.toContain(assertion.split('.')[2])
    }
    expect(error.errorDescription).toContain('[redacted]')
  })
})

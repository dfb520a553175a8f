// @ts-check
// The cost of client authentication (issue #12), side by side in one run:
//   1. client CPU per token request — client_secret_basic vs client_secret_jwt (HS256) vs
//      private_key_jwt (RS256, ES256, EdDSA) — through the token-request core, to a loopback
//      token endpoint in another process (which verifies every assertion with jose);
//   2. CPU per assertion — ours (node:crypto, sync, header precomputed) vs jose's `SignJWT`
//      (the same claims and header, the same KeyObject) vs one bare `crypto.sign`.
// Standalone: not part of `npm run bench`.
//
//   npm run bench:client-auth          (builds first)
//   node bench/client-auth.js          (after `npm run build`: it imports dist/, not lib/)
//
// CPU is `process.cpuUsage()` (user + system, all threads: jose's WebCrypto work on the
// threadpool counts), per batch of sequential calls; variants are interleaved round-robin
// and the median batch is reported. BENCH_QUICK=1 for a short run.
import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto'
import { createServer } from 'node:http'
import os from 'node:os'
import { importJWK, jwtVerify, SignJWT } from 'jose'
import { Agent } from 'undici'
import { forkProcess, median, serve, table } from './util.js'

const dist = new URL('../dist/oauth/', import.meta.url)
const hmacSecret = 'bench-client-secret-0123456789abcdefghijklmnopqrstuvwxyz-0123456789'

if (process.argv[2] === 'serve') {
  await tokenEndpoint()
} else {
  await main()
}

/** The loopback token endpoint (child process): verifies assertions, answers a token. */
async function tokenEndpoint() {
  /** @type {Map<string, { key: Awaited<ReturnType<typeof importJWK>>, alg: string }>} */
  const clients = new Map()
  const stats = { requests: 0, verified: 0, failed: /** @type {string[]} */ ([]) }
  let issued = 0
  /** @type {string} */
  let tokenUrl = ''
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk) => {
      body += chunk
    })
    req.on('end', async () => {
      stats.requests++
      const form = new URLSearchParams(body)
      const assertion = form.get('client_assertion')
      const client = clients.get(form.get('client_id') ?? '')
      if (assertion !== null) {
        try {
          if (client === undefined) throw new Error('unknown client')
          await jwtVerify(assertion, client.key, { algorithms: [client.alg], audience: tokenUrl })
          stats.verified++
        } catch (error) {
          if (stats.failed.length < 5) stats.failed.push(String(error))
          res.writeHead(401, { 'content-type': 'application/json' })
          res.end('{"error":"invalid_client"}')
          return
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({ access_token: `at-${++issued}`, token_type: 'Bearer', expires_in: 3600 }),
      )
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  tokenUrl = `http://127.0.0.1:${port}/token`
  serve(
    {
      /** @param {{ client: string, alg: string, jwk: import('jose').JWK }} args */
      async register({ client, alg, jwk }) {
        clients.set(client, { key: await importJWK(jwk, alg), alg })
      },
      stats: () => stats,
    },
    { tokenUrl },
  )
}

async function main() {
  const quick = process.env.BENCH_QUICK === '1'
  /** @type {{ tokenRequest: Function }} */
  const { tokenRequest } = await import(new URL('token-request.js', dist).href)
  const { clientSecretBasic } = await import(new URL('client-auth.js', dist).href)
  const { clientSecretJwt, privateKeyJwt } = await import(new URL('jwt-client-auth.js', dist).href)
  const { redactor } = await import(new URL('redaction.js', dist).href)

  const keys = {
    RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
    ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    EdDSA: generateKeyPairSync('ed25519').privateKey,
  }
  const secretKey = new TextEncoder().encode(hmacSecret)

  const child = await forkProcess('client-auth.js', { args: ['serve'] })
  const { tokenUrl } = /** @type {{ tokenUrl: string }} */ (child.ready)
  const dispatcher = new Agent({ keepAliveTimeout: 60_000 })

  /** @type {[string, string, unknown][]} name, client id, ClientAuth */
  const variants = [
    ['client_secret_basic', 'basic', clientSecretBasic(hmacSecret)],
    ['client_secret_jwt HS256', 'hs256', clientSecretJwt(hmacSecret)],
    ...Object.entries(keys).map(
      ([alg, key]) =>
        /** @type {[string, string, unknown]} */ ([
          `private_key_jwt ${alg}`,
          alg.toLowerCase(),
          privateKeyJwt({ key }),
        ]),
    ),
  ]
  await child.call('register', {
    client: 'hs256',
    alg: 'HS256',
    jwk: { kty: 'oct', k: Buffer.from(secretKey).toString('base64url') },
  })
  for (const [alg, key] of Object.entries(keys)) {
    await child.call('register', {
      client: alg.toLowerCase(),
      alg,
      jwk: createPublicKey(key).export({ format: 'jwk' }),
    })
  }

  const grant = new URLSearchParams({ grant_type: 'client_credentials' })
  const requests = variants.map(([name, clientId, clientAuth]) => ({
    name,
    send: tokenRequest({ endpoint: { url: new URL(tokenUrl) }, clientId, clientAuth, dispatcher }),
    /** @type {number[]} */ samples: [],
  }))

  // 1. Client CPU per token request.
  const perBatch = quick ? 40 : 100
  const rounds = quick ? 5 : 15
  for (const { send } of requests) {
    for (let i = 0; i < 20; i++) await send(grant, { signal: AbortSignal.timeout(10_000) }) // warm-up
  }
  for (let round = 0; round < rounds; round++) {
    for (const variant of requests) {
      const start = process.cpuUsage()
      for (let i = 0; i < perBatch; i++)
        await variant.send(grant, { signal: AbortSignal.timeout(10_000) })
      const used = process.cpuUsage(start)
      variant.samples.push((used.user + used.system) / perBatch)
    }
  }
  const stats = await child.call('stats')
  await child.close()
  await dispatcher.close()
  if (stats.failed.length > 0) throw new Error(`assertions refused: ${stats.failed.join('; ')}`)

  // 2. CPU per assertion: ours vs jose vs a bare crypto.sign.
  const tokenEndpointUrl = new URL('https://as.example/oauth2/token')
  const claims = () => {
    const now = Math.floor(Date.now() / 1000)
    return {
      iss: 'client',
      sub: 'client',
      aud: tokenEndpointUrl.href,
      jti: crypto.randomUUID(),
      iat: now,
      nbf: now,
      exp: now + 60,
    }
  }
  const request = () => ({
    tokenUrl: tokenEndpointUrl,
    clientId: 'client',
    form: new URLSearchParams(),
    headers: {},
    signal: new AbortController().signal,
  })
  /** @type {{ name: string, ours: () => unknown, jose: () => Promise<unknown>, bare: () => unknown }[]} */
  const signers = [
    {
      name: 'HS256',
      ours: (
        (auth) => () =>
          auth(request())
      )(clientSecretJwt(hmacSecret)),
      jose: () =>
        new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secretKey),
      bare: () => null,
    },
    ...Object.entries(keys).map(([alg, key]) => {
      const auth = privateKeyJwt({ key })
      const data = Buffer.alloc(300, 'a')
      // One request object: each call sets (replaces) the same three form fields.
      const r = request()
      return {
        name: alg,
        ours: () => auth(r),
        jose: () => new SignJWT(claims()).setProtectedHeader({ alg, typ: 'JWT' }).sign(key),
        bare:
          alg === 'EdDSA'
            ? () => sign(null, data, key)
            : alg === 'ES256'
              ? () => sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' })
              : () => sign('sha256', data, key),
      }
    }),
  ]
  const signBatch = quick ? 100 : 300
  const signRounds = quick ? 5 : 15
  /** @param {() => unknown} fn */
  const cpuPerCall = async (fn) => {
    const start = process.cpuUsage()
    for (let i = 0; i < signBatch; i++) await fn()
    const used = process.cpuUsage(start)
    return (used.user + used.system) / signBatch
  }
  /** @type {Record<string, { ours: number[], jose: number[], bare: number[] }>} */
  const signing = {}
  for (const { name } of signers) signing[name] = { ours: [], jose: [], bare: [] }
  for (const s of signers) {
    await cpuPerCall(s.ours)
    await cpuPerCall(s.jose)
    await cpuPerCall(s.bare)
  }
  for (let round = 0; round < signRounds; round++) {
    for (const s of signers) {
      const row = signing[s.name]
      if (row === undefined) continue
      row.ours.push(await cpuPerCall(s.ours))
      row.jose.push(await cpuPerCall(s.jose))
      row.bare.push(await cpuPerCall(s.bare))
    }
  }

  // 3. Redaction in the core: every request's credentials are redacted from whatever error
  // text it produces. A secret that never changes (client_secret_basic) gets its redactor
  // once; an assertion is new on every request, so its redactor (client id:assertion,
  // assertion, the Basic form — one regex) is built, compiled and run afresh each time it
  // is used. This row is that cost for one assertion: built and applied once.
  const sample = request()
  privateKeyJwt({ key: keys.ES256 })(sample)
  const assertion = sample.form.get('client_assertion') ?? ''
  let n = 0
  const redactorCost = await cpuPerCall(() => {
    // A distinct assertion each time, as on the wire (V8 caches a regex by its source).
    const fresh = `${assertion.slice(0, -4)}${String(n++ % 10_000).padStart(4, '0')}`
    redactor([`client:${fresh}`, fresh, Buffer.from(`client:${fresh}`).toString('base64')])(
      'application/json',
    )
  })

  const fmt = (/** @type {number} */ micros) => `${micros.toFixed(1)} µs`
  const base = median(requests[0]?.samples ?? [])
  console.log(
    `Client authentication cost — Node ${process.version}, ${os.cpus()[0]?.model ?? '?'} ×${os.cpus().length}, load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  console.log(
    `\nClient CPU per token request (${rounds} rounds × ${perBatch} sequential requests; server verified ${stats.verified} assertions, refused 0):\n`,
  )
  console.log(
    table(
      ['client authentication', 'CPU per token request', 'vs client_secret_basic'],
      requests.map(({ name, samples }) => [
        name,
        fmt(median(samples)),
        `${(median(samples) / base).toFixed(2)}×`,
      ]),
    ),
  )
  console.log(
    `\nCPU per assertion (${signRounds} rounds × ${signBatch}; ours = the whole ClientAuth call: claims, jti, sign, form):\n`,
  )
  console.log(
    table(
      [
        'alg',
        'ours (sync)',
        'jose SignJWT (async)',
        'jose / ours',
        'bare crypto.sign',
        'ours / bare',
      ],
      signers.map(({ name }) => {
        const row = signing[name] ?? { ours: [], jose: [], bare: [] }
        const ours = median(row.ours)
        const jose = median(row.jose)
        const bare = name === 'HS256' ? Number.NaN : median(row.bare)
        return [
          name,
          fmt(ours),
          fmt(jose),
          `${(jose / ours).toFixed(2)}×`,
          Number.isNaN(bare) ? '–' : fmt(bare),
          Number.isNaN(bare) ? '–' : `${(ours / bare).toFixed(2)}×`,
        ]
      }),
    ),
  )
  console.log(
    `\nRedactor for one fresh ${assertion.length}-character assertion, built and applied once (dist/oauth/redaction.js): ${fmt(redactorCost)}.`,
  )
}

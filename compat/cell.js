// One cell of the compatibility matrix: one undici major × one way of sending a request, on
// the Node that runs this file. Run by scripts/compat.js (after `npm run build`):
//
//   node compat/cell.js <undici7|undici8> <path>
//
// Every path also runs the DPoP check (compat/dpop.js): proofs and nonces at a token endpoint
// and an API that verify them.
//
// paths: request, undici-fetch, fetch-dispatcher, fetch-wrapper, fetch-global,
//        fetch-global-builtin, interceptors
//
// Prints one JSON line: { node, undici, path, checks: [{ name, ok, error?, note? }], control }.
// `control` runs the same request shapes through the same path WITHOUT accessToken(): when a
// cell fails and its control fails too, undici itself does not support the combination.
import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import { accessToken, clientCredentials } from 'undici-access-token'
import { sleep, until, withTimeout } from '../tests/support/async.js'
import { composition } from './compose.js'
import { dpopCheck } from './dpop.js'
import { startServers } from './servers.js'

const [alias, pathName] = process.argv.slice(2)
if (alias !== 'undici7' && alias !== 'undici8') throw new Error(`unknown undici alias ${alias}`)

/** Concurrent requests on a cold cache in the single-flight check. */
const concurrency = 10
/** Most time one check may take. */
const checkTimeout = 10_000
const stream = Symbol('stream body')

const servers = await startServers()
const { api, other, tokenEndpoint } = servers

if (pathName === 'fetch-global-builtin') {
  // Built-in fetch runs before undici is loaded, so Node's own dispatcher holds the global
  // slot (on Node 20/22 an Agent of the undici 6 bundled in Node) and getGlobalDispatcher()
  // may return it.
  await (await fetch(`${other.origin}/before-undici`)).text()
}
const require = createRequire(import.meta.url)
const undici = require(alias)
const undiciVersion = require(`${alias}/package.json`).version
// The token request goes through global fetch (the default), so on the fetch-global path it
// passes through the very interceptor it serves.
const fetchToken = clientCredentials({
  tokenUrl: `${tokenEndpoint.origin}/token`,
  clientId: 'compat',
  clientSecret: 'compat-secret',
})
const newAuth = (extra = {}) => accessToken({ origins: api.origin, fetchToken, ...extra })

function fetchInit(method, body, headers, signal) {
  const init = { method, headers, signal }
  if (body === stream) {
    init.body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('he'))
        controller.enqueue(new TextEncoder().encode('llo'))
        controller.close()
      },
    })
    init.duplex = 'half'
  } else if (body !== undefined) {
    init.body = body
  }
  return init
}

async function viaFetch(fetchImpl, url, init) {
  const response = await fetchImpl(url, init)
  return { status: response.status, text: await response.text() }
}

/** A fresh Agent, composed with `auth` unless it is null. */
const agent = (auth) => (auth ? new undici.Agent().compose(auth) : new undici.Agent())

/**
 * The ways of sending a request. `dispatcher(auth)` prepares a dispatcher carrying `auth`
 * (null: none); `send(dispatcher, url, options)` sends one request and reads the answer.
 */
const paths = {
  request: {
    dispatcher: agent,
    async send(dispatcher, url, { method = 'GET', body, headers, signal } = {}) {
      const response = await undici.request(url, {
        dispatcher,
        method,
        headers,
        signal,
        body: body === stream ? Readable.from([Buffer.from('he'), Buffer.from('llo')]) : body,
      })
      return { status: response.statusCode, text: await response.body.text() }
    },
  },
  'undici-fetch': {
    dispatcher: agent,
    send: (dispatcher, url, { method = 'GET', body, headers, signal } = {}) =>
      viaFetch(undici.fetch, url, { ...fetchInit(method, body, headers, signal), dispatcher }),
  },
  'fetch-dispatcher': {
    dispatcher: agent,
    send: (dispatcher, url, { method = 'GET', body, headers, signal } = {}) =>
      viaFetch(globalThis.fetch, url, { ...fetchInit(method, body, headers, signal), dispatcher }),
  },
  'fetch-wrapper': {
    unsupported: undici.Dispatcher1Wrapper
      ? undefined
      : `undici ${undiciVersion} has no Dispatcher1Wrapper (built-in fetch takes its dispatchers as they are)`,
    dispatcher: (auth) => new undici.Dispatcher1Wrapper(agent(auth)),
    send: (dispatcher, url, { method = 'GET', body, headers, signal } = {}) =>
      viaFetch(globalThis.fetch, url, { ...fetchInit(method, body, headers, signal), dispatcher }),
  },
  'fetch-global': {
    // setGlobalDispatcher(new Agent().compose(auth)); each check with a fresh interceptor.
    dispatcher(auth) {
      globalBase ??= new undici.Agent()
      undici.setGlobalDispatcher(auth ? globalBase.compose(auth) : globalBase)
      return undefined
    },
    send: (_dispatcher, url, { method = 'GET', body, headers, signal } = {}) =>
      viaFetch(globalThis.fetch, url, fetchInit(method, body, headers, signal)),
  },
  'fetch-global-builtin': {
    // As the README says: setGlobalDispatcher(getGlobalDispatcher().compose(auth)), where the
    // global dispatcher is whatever built-in fetch installed.
    dispatcher(auth) {
      globalBase ??= undici.getGlobalDispatcher()
      undici.setGlobalDispatcher(auth ? globalBase.compose(auth) : globalBase)
      return undefined
    },
    send: (_dispatcher, url, { method = 'GET', body, headers, signal } = {}) =>
      viaFetch(globalThis.fetch, url, fetchInit(method, body, headers, signal)),
  },
}
let globalBase

const follows = pathName !== 'request' // fetch follows redirects itself; undici.request does not

function expect(condition, message) {
  if (!condition) throw new Error(message)
}

const show = (value) => JSON.stringify(value)

function isAbort(error) {
  for (let e = error; e; e = e.cause) {
    if (e.name === 'AbortError' || e.code === 'UND_ERR_ABORTED') return true
  }
  return false
}

function describe(error) {
  const parts = []
  for (let e = error, depth = 0; e && depth < 4; e = e.cause, depth++) {
    parts.push(`${e.name ?? 'Error'}: ${e.message ?? String(e)}${e.code ? ` [${e.code}]` : ''}`)
  }
  return parts.join(' <- ')
}

const bearer = (token) => [`Bearer ${token}`]
const lastToken = () => tokenEndpoint.issued.at(-1)

/** The request-path checks; each gets a fresh interceptor (cold cache) and clean servers. */
function pathChecks(path) {
  const send = (dispatcher, url, options) => path.send(dispatcher, url, options)
  return {
    async 'cold single flight'() {
      const dispatcher = path.dispatcher(newAuth())
      const answers = await Promise.all(
        Array.from({ length: concurrency }, (_, i) =>
          send(dispatcher, `${api.origin}/echo?i=${i}`),
        ),
      )
      expect(
        answers.every((answer) => answer.status === 200),
        `statuses ${show(answers.map((a) => a.status))}`,
      )
      expect(
        tokenEndpoint.requests.length === 1,
        `${tokenEndpoint.requests.length} token requests, not 1`,
      )
      expect(api.hits.length === concurrency, `${api.hits.length} API hits`)
      const token = bearer(lastToken())
      for (const hit of api.hits) {
        expect(
          show(hit.authorizations) === show(token),
          `authorization ${show(hit.authorizations)}`,
        )
      }
    },

    async '401 renewal, string body'() {
      await renewal(path, 'hello')
    },

    async '401 renewal, streamed body'() {
      await renewal(path, stream)
    },

    async 'abort during the token fetch'() {
      const dispatcher = path.dispatcher(newAuth())
      tokenEndpoint.hold()
      const controller = new AbortController()
      const pending = send(dispatcher, `${api.origin}/echo`, { signal: controller.signal }).then(
        (answer) => ({ answer }),
        (error) => ({ error }),
      )
      await until(() => tokenEndpoint.requests.length === 1, 3_000, 'the token request')
      controller.abort()
      const outcome = await withTimeout(pending, 2_000, 'the aborted request')
      expect(outcome.error, `the aborted request resolved ${show(outcome.answer)}`)
      expect(isAbort(outcome.error), `not an abort: ${describe(outcome.error)}`)
      tokenEndpoint.release()
      const after = await send(dispatcher, `${api.origin}/echo`)
      expect(after.status === 200, `next request: ${after.status}`)
      await sleep(50)
      expect(
        tokenEndpoint.requests.length === 1,
        `${tokenEndpoint.requests.length} token requests, not 1`,
      )
      expect(
        api.hits.length === 1,
        `API hits ${show(api.hits.map((h) => h.url))}: aborted one sent`,
      )
    },

    async 'another origin gets no token'() {
      const dispatcher = path.dispatcher(newAuth())
      const cold = await send(dispatcher, `${other.origin}/cold`)
      expect(cold.status === 200 && tokenEndpoint.requests.length === 0, 'a token fetched for it')
      expect((await send(dispatcher, `${api.origin}/echo`)).status === 200, 'API call failed')
      const warm = await send(dispatcher, `${other.origin}/warm`)
      expect(warm.status === 200, `status ${warm.status}`)
      for (const hit of other.hits) {
        expect(hit.authorizations.length === 0, `${hit.url} got authorization`)
      }
      expect(other.hits.length === 2, `${other.hits.length} hits at the other origin`)
    },

    async 'DPoP: proofs verified, one nonce round trip at the token endpoint and the API'() {
      await dpopCheck({ dpop: servers.dpop, dispatcher: path.dispatcher, send })
    },

    async 'redirects: token on same-origin hops only'() {
      const dispatcher = path.dispatcher(newAuth())
      const same = await send(dispatcher, `${api.origin}/redirect-same`)
      const foreign = await send(dispatcher, `${api.origin}/redirect-foreign`)
      const token = bearer(lastToken())
      if (follows) {
        expect(same.status === 200 && foreign.status === 200, `${same.status}, ${foreign.status}`)
        expect(api.hits.length === 3, `API hits ${show(api.hits.map((h) => h.url))}`)
        expect(other.hits.length === 1, `${other.hits.length} hits at the other origin`)
      } else {
        expect(same.status === 302 && foreign.status === 302, `${same.status}, ${foreign.status}`)
        expect(other.hits.length === 0, 'undici.request followed a redirect')
      }
      for (const hit of api.hits) {
        expect(show(hit.authorizations) === show(token), `${hit.url}: ${show(hit.authorizations)}`)
      }
      expect(
        other.hits.every((hit) => hit.authorizations.length === 0),
        'token sent elsewhere',
      )
    },
  }
}

/** Warm the cache, revoke the token, send `body`: swallowed 401, one renewal, body resent. */
async function renewal(path, body) {
  const dispatcher = path.dispatcher(newAuth())
  const warm = await path.send(dispatcher, `${api.origin}/echo`)
  expect(warm.status === 200, `warm-up: ${warm.status}`)
  const rejected = lastToken()
  api.revoke(rejected)
  api.hits.length = 0
  const answer = await path.send(dispatcher, `${api.origin}/echo`, { method: 'POST', body })
  expect(answer.status === 200, `status ${answer.status} ${answer.text}`)
  const renewed = lastToken()
  expect(
    tokenEndpoint.requests.length === 2,
    `${tokenEndpoint.requests.length} token requests, not 2`,
  )
  const echoed = JSON.parse(answer.text)
  expect(echoed.body === 'hello' && echoed.token === renewed, `echo ${answer.text}`)
  const seen = api.hits.map((hit) => [hit.authorizations, hit.body])
  const want = [
    [bearer(rejected), 'hello'],
    [bearer(renewed), 'hello'],
  ]
  expect(show(seen) === show(want), `API saw ${show(seen)}`)
}

/** The same request shapes through the same path, without accessToken(). */
async function control(path) {
  const dispatcher = path.dispatcher(null)
  const headers = { authorization: 'Bearer static' }
  const get = await path.send(dispatcher, `${api.origin}/echo`, { headers })
  expect(get.status === 200, `GET: ${get.status}`)
  for (const body of ['hello', stream]) {
    const post = await path.send(dispatcher, `${api.origin}/echo`, {
      method: 'POST',
      body,
      headers,
    })
    expect(post.status === 200 && JSON.parse(post.text).body === 'hello', `POST: ${post.text}`)
  }
  const elsewhere = await path.send(dispatcher, `${other.origin}/x`)
  expect(elsewhere.status === 200, `other origin: ${elsewhere.status}`)
}

async function run(name, fn) {
  servers.reset()
  try {
    const note = await withTimeout(Promise.resolve().then(fn), checkTimeout, name)
    return typeof note === 'string' ? { name, ok: true, note } : { name, ok: true }
  } catch (error) {
    return { name, ok: false, error: describe(error) }
  } finally {
    tokenEndpoint.release()
  }
}

const result = {
  node: process.version,
  bundledUndici: process.versions.undici,
  undici: undiciVersion,
  path: pathName,
  checks: [],
}
if (pathName === 'interceptors') {
  result.checks = await composition({ undici, undiciVersion, servers, fetchToken, run })
} else {
  const path = paths[pathName]
  if (path === undefined) throw new Error(`unknown path ${pathName}`)
  if (path.unsupported) {
    result.unsupported = path.unsupported
  } else {
    for (const [name, fn] of Object.entries(pathChecks(path))) {
      result.checks.push(await run(name, fn))
    }
    const outcome = await run('control (no interceptor)', () => control(path))
    result.control = outcome.ok ? { ok: true } : { ok: false, error: outcome.error }
    if (pathName === 'fetch-global-builtin') {
      result.note =
        globalBase instanceof undici.Agent
          ? `getGlobalDispatcher() returned undici ${undiciVersion}'s own Agent`
          : `getGlobalDispatcher() returned Node's own dispatcher (${globalBase?.constructor?.name} of the bundled undici ${process.versions.undici})`
    }
  }
}

await servers.close()
console.log(JSON.stringify(result))
// Agents keep idle sockets and the global dispatcher is process-wide: leave now.
process.exit(0)

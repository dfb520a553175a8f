// accessToken() composed with undici's own interceptors, in both orders, through undici.request.
//
// `compose(a, b)` makes b the outer interceptor (it sees the request first). "token outside X"
// is `compose(X, accessToken)`; "token inside X" is `compose(accessToken, X)`.
//
// In every order: no API hit carries more than one token, and no hit at another origin carries
// one (the safety checks). Functional checks must pass in the orders marked `required`; in the
// others their outcome is reported as a note (a documented limitation), not as a failure.
import { accessToken } from 'undici-access-token'
import { rawHeaderValues } from '../tests/support/servers.js'
import { dpopCheck } from './dpop.js'

/** Every `x-api-token` value a hit was sent. */
const apiTokens = (hit) => rawHeaderValues(hit.rawHeaders, 'x-api-token')

/** Which orders must work fully; the rest must only be safe. */
const required = {
  retry: ['outside', 'inside'],
  redirect: ['outside', 'inside'],
  dns: ['outside'], // dns() rewrites the origin to an IP: accessToken() must see it first
  cache: ['outside', 'inside'],
  decompress: ['outside', 'inside'],
}

export async function composition({ undici, undiciVersion, servers, fetchToken, run }) {
  const { api, other, tokenEndpoint } = servers
  const { interceptors } = undici
  const localApi = `http://localhost:${api.port}`
  const localOther = `http://localhost:${other.port}`
  const factories = {
    retry: () => interceptors.retry({ maxRetries: 2, minTimeout: 10, maxTimeout: 50 }),
    redirect: (options = {}) => interceptors.redirect({ maxRedirections: 3, ...options }),
    dns: () => interceptors.dns({ dualStack: false, affinity: 4 }),
    cache: () => interceptors.cache(),
    decompress: interceptors.decompress && (() => interceptors.decompress()),
  }

  const expect = (condition, message) => {
    if (!condition) throw new Error(message)
  }
  const show = (value) => JSON.stringify(value)
  const bearer = () => [`Bearer ${tokenEndpoint.issued.at(-1)}`]
  const auth = (origin, extra = {}) => accessToken({ origins: origin, fetchToken, ...extra })

  async function send(dispatcher, url, options = {}) {
    const response = await undici.request(url, { dispatcher, ...options })
    return { status: response.statusCode, text: await response.body.text() }
  }

  function hitsTo(path) {
    return api.hits.filter((hit) => hit.url === path)
  }

  /** No API hit with two tokens, no token at the other origin. */
  function safe() {
    for (const hit of api.hits) {
      expect(hit.authorizations.length <= 1, `${hit.url}: ${show(hit.authorizations)}`)
    }
    for (const hit of other.hits) {
      expect(hit.authorizations.length === 0, `${hit.url} at the other origin got authorization`)
      expect(apiTokens(hit).length === 0, `${hit.url} at the other origin got x-api-token`)
    }
  }

  async function renew(dispatcher, url, expectText) {
    api.revoke(tokenEndpoint.issued.at(-1))
    const before = api.hits.length
    const answer = await send(dispatcher, url)
    expect(answer.status === 200, `after revocation: ${answer.status} ${answer.text}`)
    if (expectText) expect(answer.text === expectText, `body ${show(answer.text)}`)
    const fresh = show(bearer())
    const hits = api.hits.slice(before)
    expect(show(hits.at(-1)?.authorizations) === fresh, `last hit ${show(hits.at(-1))}`)
    expect(hits.length >= 2, `${hits.length} hits: the 401 was not retried`)
    expect(
      tokenEndpoint.requests.length === 2,
      `${tokenEndpoint.requests.length} token requests, not 2`,
    )
  }

  const scenarios = {
    async retry(dispatcher) {
      const first = await send(dispatcher, `${api.origin}/flaky/a`)
      expect(first.status === 200, `status ${first.status}`)
      const a = hitsTo('/flaky/a')
      expect(a.length === 2, `${a.length} hits on /flaky/a, not 2 (503, then 200)`)
      for (const hit of a) expect(show(hit.authorizations) === show(bearer()), show(hit))
      // 401 → renewed token → 503 → retried: the retry carries the fresh token.
      await renew(dispatcher, `${api.origin}/flaky/b`)
      const b = hitsTo('/flaky/b').map((hit) => hit.authorizations[0])
      const [rejected, fresh] = tokenEndpoint.issued.map((token) => `Bearer ${token}`)
      expect(show(b) === show([rejected, fresh, fresh]), `/flaky/b saw ${show(b)}`)
      await send(dispatcher, `${other.origin}/x`)
    },
    async redirect(dispatcher) {
      const same = await send(dispatcher, `${api.origin}/redirect-same`)
      expect(same.status === 200, `same-origin redirect: ${same.status}`)
      for (const hit of api.hits) expect(show(hit.authorizations) === show(bearer()), show(hit))
      const foreign = await send(dispatcher, `${api.origin}/redirect-foreign`)
      expect(foreign.status === 200 && other.hits.length === 1, `foreign: ${foreign.status}`)
      await renew(dispatcher, `${api.origin}/redirect-same`)
      const echo = api.hits.at(-1)
      expect(echo.url === '/echo', `the renewed request did not follow: ${echo.url}`)
    },
    async dns(dispatcher) {
      const answer = await send(dispatcher, `${localApi}/echo`)
      expect(answer.status === 200, `status ${answer.status}: no token sent`)
      expect(show(api.hits[0].authorizations) === show(bearer()), show(api.hits[0]))
      await renew(dispatcher, `${localApi}/echo`)
      await send(dispatcher, `${localOther}/x`)
      await send(dispatcher, `${other.origin}/y`)
    },
    async cache(dispatcher, order) {
      const one = await send(dispatcher, `${api.origin}/cache/public`)
      const two = await send(dispatcher, `${api.origin}/cache/public`)
      expect(one.status === 200 && two.text === one.text, `public: ${one.text} / ${two.text}`)
      const hits = hitsTo('/cache/public')
      expect(hits.length === 1, `${hits.length} API hits for a cacheable public response`)
      expect(show(hits[0].authorizations) === show(bearer()), show(hits[0]))
      await renew(dispatcher, `${api.origin}/echo`)
      await send(dispatcher, `${other.origin}/x`)
      // RFC 9111 §3.5: a shared cache must not reuse a response to an authenticated request
      // unless it says `public` (or s-maxage / must-revalidate).
      await send(dispatcher, `${api.origin}/cache/private`)
      await send(dispatcher, `${api.origin}/cache/private`)
      const stored = hitsTo('/cache/private').length === 1
      if (order === 'outside') {
        expect(!stored, 'a private response to an authenticated request was reused')
        return undefined
      }
      return stored
        ? 'the cache cannot see the token: it stored and reused a non-public response to an authenticated request'
        : undefined
    },
    async decompress(dispatcher) {
      const answer = await send(dispatcher, `${api.origin}/gzip`)
      expect(answer.text === 'hello, compressed', `body ${show(answer.text)}`)
      // The 401 is gzip-encoded too: swallowed, then the retry is decoded.
      await renew(dispatcher, `${api.origin}/gzip`, 'hello, compressed')
      await send(dispatcher, `${other.origin}/x`)
    },
  }

  const checks = []
  for (const [kind, factory] of Object.entries(factories)) {
    for (const order of ['outside', 'inside']) {
      const name = `${kind}: token ${order} ${kind}()`
      if (!factory) {
        checks.push({ name, ok: true, note: `undici ${undiciVersion} has no ${kind}()` })
        continue
      }
      const origin = kind === 'dns' ? localApi : api.origin
      const mustWork = required[kind].includes(order)
      checks.push(
        await run(name, async () => {
          const token = auth(origin)
          const dispatcher =
            order === 'outside'
              ? new undici.Agent().compose(factory(), token)
              : new undici.Agent().compose(token, factory())
          let note
          try {
            note = await scenarios[kind](dispatcher, order)
          } catch (error) {
            safe()
            if (mustWork) throw error
            return `not supported in this order (documented): ${error.message}`
          }
          safe()
          return note
        }),
      )
    }
  }

  checks.push(
    await run('redirect: custom token header never crosses origins', async () => {
      const headers = (token) => ({
        authorization: `Bearer ${token.accessToken}`,
        'x-api-token': token.accessToken,
      })
      const token = () => auth(api.origin, { headers })
      // The recommended order: every hop passes through accessToken()'s origin check.
      const inside = new undici.Agent().compose(token(), factories.redirect())
      await send(inside, `${api.origin}/redirect-foreign`)
      safe()
      // The other order: undici strips only authorization/cookie/proxy-authorization on a
      // cross-origin hop, unless told (undici ≥ 8.4: stripHeadersOnCrossOriginRedirect).
      other.hits.length = 0
      const [major, minor] = undiciVersion.split('.').map(Number)
      const stripping = major > 8 || (major === 8 && minor >= 4)
      const outside = new undici.Agent().compose(
        stripping
          ? factories.redirect({ stripHeadersOnCrossOriginRedirect: ['x-api-token'] })
          : factories.redirect(),
        token(),
      )
      await send(outside, `${api.origin}/redirect-foreign`)
      if (stripping) {
        safe()
        return undefined
      }
      const leaked = other.hits.some((hit) => apiTokens(hit).length > 0)
      other.hits.length = 0
      return leaked
        ? 'token outside redirect(): a custom header crosses origins on undici 7 (documented: use the recommended order)'
        : undefined
    }),
  )

  checks.push(
    await run(
      'recommended stack: dns, accessToken, retry, redirect, cache, decompress',
      async () => {
        // Innermost first: dns() inside accessToken() (it rewrites the origin to an IP);
        // retry() and redirect() outside it (every attempt and hop passes the origin check and
        // gets the current token); cache() outside redirect() (undici 8 insists).
        const dispatcher = new undici.Agent().compose(
          factories.dns(),
          auth(localApi),
          factories.retry(),
          factories.redirect(),
          factories.cache(),
          ...(factories.decompress ? [factories.decompress()] : []),
        )
        const same = await send(dispatcher, `${localApi}/redirect-same`)
        expect(same.status === 200, `same-origin redirect: ${same.status}`)
        const foreign = await send(dispatcher, `${localApi}/redirect-foreign`)
        expect(foreign.status === 200 && other.hits.length === 1, `foreign: ${foreign.status}`)
        const flaky = await send(dispatcher, `${localApi}/flaky/stack`)
        expect(flaky.status === 200, `retry: ${flaky.status}`)
        const cached = [
          await send(dispatcher, `${localApi}/cache/public`),
          await send(dispatcher, `${localApi}/cache/public`),
        ]
        expect(cached[1].text === cached[0].text, `cache: ${show(cached.map((a) => a.text))}`)
        expect(hitsTo('/cache/public').length === 1, 'the public response was not reused')
        if (factories.decompress) {
          const gzip = await send(dispatcher, `${localApi}/gzip`)
          expect(gzip.text === 'hello, compressed', `gzip: ${show(gzip.text)}`)
        }
        for (const hit of api.hits) expect(show(hit.authorizations) === show(bearer()), show(hit))
        await renew(dispatcher, `${localApi}/flaky/stack-2`)
        safe()
      },
    ),
  )
  checks.push(
    await run('DPoP: accessToken({ dpop }) with dns() inside, retry() and redirect() outside', () =>
      // By name, as in the recommended stack: the API checks htu against the Host it was sent.
      dpopCheck({
        dpop: servers.dpop,
        origin: `http://localhost:${servers.dpop.api.port}`,
        dispatcher: (token) =>
          new undici.Agent().compose(
            factories.dns(),
            token,
            factories.retry(),
            factories.redirect(),
          ),
        send,
      }),
    ),
  )
  return checks
}

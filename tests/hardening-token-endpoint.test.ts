import {
  Agent,
  type Dispatcher,
  getGlobalDispatcher,
  interceptors,
  setGlobalDispatcher,
} from 'undici'
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import {
  type ClientCredentialsOptions,
  clientCredentials,
  type FetchToken,
  memoryStore,
  TokenCache,
  TokenRequestError,
} from '../lib/index.js'
import { rejectionOf } from './support/async.js'
import { expectNoSecrets } from './support/secrets.js'
import { startTokenEndpoint, type TokenEndpoint } from './support/servers.js'

/*
 * Hardening of the token request (issue #10): redirects are never followed,
 * whatever the dispatcher holds, and a secret echoed back by the token endpoint
 * is redacted in every encoding it could have travelled or been echoed in.
 * Real node:http servers on 127.0.0.1; the token endpoint and "another origin"
 * count what they receive.
 */

/** application/x-www-form-urlencoded, as URLSearchParams (and so the Basic credential) does it. */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2)
}

/** `%XX` escapes with lower-case hex digits. */
function lowerHex(encoded: string): string {
  return encoded.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase())
}

/** JSON string escaping with every non-ASCII UTF-16 unit as \uXXXX (Python's ensure_ascii). */
function asciiJson(value: string, upper = false): string {
  return JSON.stringify(value)
    .slice(1, -1)
    .replace(/[^\x20-\x7e]/g, (char) => {
      const hex = (char.codePointAt(0) ?? 0).toString(16).padStart(4, '0')
      return `\\u${upper ? hex.toUpperCase() : hex}`
    })
}

// Every character class that an encoding changes: a space, '"' and '\' (JSON),
// '+', '/', ':', '~!*'()' (left alone by encodeURIComponent, not by forms),
// Latin-1, and a character outside the BMP (a surrogate pair in JSON).
const clientId = 'reader app ü'
const clientSecret = `s3cr"et\\ wö/rd+é:~!*'()-f00d😀`
const basicPair = `${formEncode(clientId)}:${formEncode(clientSecret)}`
const basicCredential = Buffer.from(basicPair).toString('base64')

/** The client secret as it may be echoed back; the name says which encoding. */
const echoedForms: Record<string, string> = {
  'as is': clientSecret,
  'form-encoded (+ for space)': formEncode(clientSecret),
  'form-encoded, lower-case hex': lowerHex(formEncode(clientSecret)),
  'encodeURIComponent (%20 for space)': encodeURIComponent(clientSecret),
  'encodeURIComponent, lower-case hex': lowerHex(encodeURIComponent(clientSecret)),
  "RFC 3986 strict (also !'()* escaped)": encodeURIComponent(clientSecret).replace(
    /[!'()*]/g,
    (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`,
  ),
  'Python quote() (/ left alone)': encodeURIComponent(clientSecret).replaceAll('%2F', '/'),
  'JSON-escaped': JSON.stringify(clientSecret).slice(1, -1),
  'JSON-escaped with \\/ (PHP json_encode)': JSON.stringify(clientSecret)
    .slice(1, -1)
    .replaceAll('/', '\\/'),
  'JSON-escaped, non-ASCII as \\uxxxx': asciiJson(clientSecret),
  'JSON-escaped, non-ASCII as \\uXXXX': asciiJson(clientSecret, true),
  'the Basic credential (base64)': basicCredential,
  'the decoded Basic credential (form-encoded id:secret)': basicPair,
  'the clientId:secret pair as is': `${clientId}:${clientSecret}`,
  'the clientId:secret pair, encodeURIComponent': encodeURIComponent(`${clientId}:${clientSecret}`),
}
/** None of these may appear anywhere in an error. */
const secretForms = Object.values(echoedForms)

/** A token endpoint that lives until the current test ends. */
async function endpointForThisTest(
  options: Parameters<typeof startTokenEndpoint>[0],
): Promise<TokenEndpoint> {
  const endpoint = await startTokenEndpoint(options)
  onTestFinished(() => endpoint.close())
  return endpoint
}

/** A server answering every request with a `status` redirect to `location`, for this test. */
function redirecting(status: number, location: string): Promise<TokenEndpoint> {
  return endpointForThisTest({ respond: () => ({ status, headers: { location } }) })
}

/** clientCredentials() with this file's client, for the token endpoint of `endpoint`. */
function grant(
  endpoint: TokenEndpoint,
  options: Partial<ClientCredentialsOptions> = {},
): FetchToken {
  return clientCredentials({
    tokenUrl: `${endpoint.origin}/oauth2/token`,
    clientId,
    clientSecret,
    ...options,
  })
}

/** Resolves to the TokenRequestError `promise` rejects with; fails on anything else. */
async function rejection(promise: Promise<unknown>): Promise<TokenRequestError> {
  const outcome = await rejectionOf(promise)
  expect(outcome).toBeInstanceOf(TokenRequestError)
  return outcome as TokenRequestError
}

/** The TokenRequestError of one token request straight from `fetchToken` (no cache). */
function requestError(fetchToken: FetchToken): Promise<TokenRequestError> {
  return rejection(fetchToken({ key: 'default', signal: new AbortController().signal }))
}

const authMethods: NonNullable<ClientCredentialsOptions['authMethod']>[] = [
  'client_secret_basic',
  'client_secret_post',
]
const redirectStatuses = [301, 302, 303, 307, 308]

describe("guards 'redirects are never followed on the token request'", () => {
  let other: TokenEndpoint
  let endpoint: TokenEndpoint
  let followingAgent: Dispatcher
  const otherToken = 'other-origin-access-token-5d1c'

  beforeEach(async () => {
    // Another origin that would gladly hand out a token.
    other = await startTokenEndpoint({
      respond: () => ({
        status: 200,
        body: { access_token: otherToken, token_type: 'Bearer', expires_in: 3600 },
      }),
    })
    endpoint = await startTokenEndpoint({ respond: () => ({ status: 500 }) })
    // undici 7's redirect interceptor, composed into the caller's own dispatcher.
    followingAgent = new Agent().compose(interceptors.redirect({ maxRedirections: 3 }))
  })
  afterEach(async () => {
    await followingAgent.close()
    await endpoint.close()
    await other.close()
  })

  describe.each(authMethods)('with %s', (authMethod) => {
    it.each(redirectStatuses)(
      'a %i to another origin through a dispatcher with redirect() → TokenRequestError naming it; the other origin receives nothing',
      async (status) => {
        const answers = await redirecting(status, `${other.origin}/steal?from=token-endpoint`)
        const error = await requestError(grant(answers, { authMethod, dispatcher: followingAgent }))
        expect(error.status).toBe(status)
        expect(error.message).toContain(String(status))
        expect(error.message).toMatch(/redirect/)
        expect(answers.requests).toHaveLength(1)
        expect(other.requests).toHaveLength(0)
        expectNoSecrets(error, [...secretForms, otherToken])
      },
    )
  })

  it('through TokenCache: the redirect is an error and nothing is cached', async () => {
    const answers = await redirecting(307, `${other.origin}/oauth2/token`)
    const store = memoryStore()
    const tokens = new TokenCache({
      store,
      fetchToken: grant(answers, { authMethod: 'client_secret_post', dispatcher: followingAgent }),
    })
    const error = await rejection(tokens.get())
    expect(error.status).toBe(307)
    expect(other.requests).toHaveLength(0)
    expect(await store.get('default')).toBeUndefined()
    expectNoSecrets(error, [...secretForms, otherToken])
  })

  it('a dispatcher that follows redirects whatever it is told: its answer is refused, never used', async () => {
    const answers = await redirecting(307, `${other.origin}/oauth2/token`)
    // A dispatcher that overrides any maxRedirections the request asks for.
    const stubborn = new Agent().compose((dispatch) => {
      const follow = interceptors.redirect({ maxRedirections: 3 })(dispatch)
      return (options, handler) => {
        const always: Dispatcher.DispatchOptions & { maxRedirections: number } = {
          ...options,
          maxRedirections: 3,
        }
        return follow(always, handler)
      }
    })
    try {
      const store = memoryStore()
      const tokens = new TokenCache({ store, fetchToken: grant(answers, { dispatcher: stubborn }) })
      const error = await rejection(tokens.get())
      expect(error.message).toMatch(/redirect/)
      // It did reach the other origin (nothing can stop such a dispatcher), but its token is not used.
      expect(other.requests).toHaveLength(1)
      expect(await store.get('default')).toBeUndefined()
      expectNoSecrets(error, [...secretForms, otherToken])
    } finally {
      await stubborn.close()
    }
  })

  it('a same-origin redirect is not followed either', async () => {
    const answers = await endpointForThisTest({
      respond: (n) =>
        n === 1
          ? { status: 308, headers: { location: '/oauth2/elsewhere' } }
          : { status: 200, body: { access_token: otherToken, expires_in: 3600 } },
    })
    const error = await requestError(grant(answers, { dispatcher: followingAgent }))
    expect(error.status).toBe(308)
    expect(answers.requests.map((hit) => hit.url)).toEqual(['/oauth2/token'])
  })

  // Already held before issue #10 (fetch() with redirect: 'manual' asks the dispatcher for no
  // redirects); pinned so that the global-fetch path keeps it.
  it('global fetch with a global dispatcher that composes redirect(): the other origin receives nothing', async () => {
    const previous = getGlobalDispatcher()
    const answers = await redirecting(307, `${other.origin}/oauth2/token`)
    setGlobalDispatcher(followingAgent)
    try {
      const error = await requestError(grant(answers, { authMethod: 'client_secret_post' }))
      expect(error.status).toBe(307)
      expect(other.requests).toHaveLength(0)
    } finally {
      setGlobalDispatcher(previous)
    }
  })
})

describe("guards 'no client secret ever appears in an error message or an enumerable field'", () => {
  let endpoint: TokenEndpoint
  let agent: Agent
  let echo = ''

  beforeEach(async () => {
    agent = new Agent()
    endpoint = await startTokenEndpoint({
      respond: () => ({
        status: 401,
        body: {
          error: 'invalid_client',
          error_description: `echo <${echo}>`,
          error_uri: `https://login.example.com/errors?echo=${echo}`,
        },
      }),
    })
  })
  afterEach(async () => {
    await agent.close()
    await endpoint.close()
  })

  describe.each(authMethods)('with %s', (authMethod) => {
    it.each(Object.entries(echoedForms))('redacts the secret echoed back %s', async (_, form) => {
      echo = form
      const error = await requestError(grant(endpoint, { authMethod, dispatcher: agent }))
      expect(error.status).toBe(401)
      expect(error.error).toBe('invalid_client')
      // The whole echoed form is replaced, not just a part of it.
      expect(error.errorDescription).toBe('echo <[redacted]>')
      expect(error.errorUri).toBe('https://login.example.com/errors?echo=[redacted]')
      expectNoSecrets(error, secretForms)
    })
  })

  it('redacts every form at once, and leaves the rest of the text alone', async () => {
    echo = secretForms.join(' | ')
    const error = await requestError(grant(endpoint, { dispatcher: agent }))
    expect(error.errorDescription).toBe(`echo <${secretForms.map(() => '[redacted]').join(' | ')}>`)
    expectNoSecrets(error, secretForms)
  })
})

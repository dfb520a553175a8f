// Requests to the environments' APIs (provider.ts, mtls-provider.ts), the checks on a
// refused token request, and the undici Agents the tests make — with or without a TLS
// client certificate — closed together at the end of each test.
import { Agent, type Dispatcher, request } from 'undici'
import { expect } from 'vitest'
import {
  accessToken,
  type ClientCredentialsOptions,
  clientCredentials,
  TokenCache,
  TokenRequestError,
  tlsClientAuth,
} from '../../lib/index.js'
import { expectNoSecrets } from '../support/secrets.js'
import type { ApiAnswerBody } from './mtls-provider.js'
import type { KeyAndCertificate } from './tls.js'

export interface ApiAnswer {
  status: number
  json: ApiAnswerBody | undefined
}

/** GET `url` through `dispatcher`: the status, and the body when 200. */
export async function get(dispatcher: Dispatcher, url: string): Promise<ApiAnswer> {
  const response = await request(url, { dispatcher })
  const text = await response.body.text()
  return {
    status: response.statusCode,
    json: response.statusCode === 200 ? (JSON.parse(text) as ApiAnswerBody) : undefined,
  }
}

/** What a request that could not get a token rejects with (it must not be sent). */
export async function rejection(dispatcher: Dispatcher, url: string): Promise<unknown> {
  return request(url, { dispatcher }).then(
    async (response) => {
      await response.body.dump()
      throw new Error(`expected no request to be sent, got ${response.statusCode}`)
    },
    (error: unknown) => error,
  )
}

/** What a promise rejects with; a resolution is a test failure. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (error: unknown) => error,
  )
}

/**
 * A token request the server refused, as the caller sees it: a TokenRequestError with
 * the server's status and OAuth error (`answer`), and none of `secrets` in any rendering.
 */
export function expectRefusedTokenRequest(
  error: unknown,
  answer: { status: number; error: string },
  secrets: readonly string[],
): void {
  expect(error).toBeInstanceOf(TokenRequestError)
  expect(error).toMatchObject(answer)
  expectNoSecrets(error, secrets)
}

/** Agents made during one test; `closeAll()` in afterEach. */
export class Agents {
  readonly #agents: Agent[] = []

  /**
   * An Agent trusting the environment's CA, presenting `identity` as its TLS client
   * certificate when given (RFC 8705: the token request's and the API's dispatcher).
   */
  make(ca?: string, identity?: KeyAndCertificate): Agent {
    const agent = new Agent({
      keepAliveTimeout: 10_000,
      connect: identity === undefined ? { ca } : { ca, cert: identity.cert, key: identity.key },
    })
    this.#agents.push(agent)
    return agent
  }

  /**
   * An Agent as `make` makes it whose requests to the API carry tokens (`accessToken(options)`):
   * the client side of every test, its TLS identity the one a bound token needs or not.
   */
  authorized(
    options: Parameters<typeof accessToken>[0],
    ca?: string,
    identity?: KeyAndCertificate,
  ): Dispatcher {
    return this.make(ca, identity).compose(accessToken(options))
  }

  /**
   * GET `url` with `tokens` through a new Agent presenting `identity` (as `authorized`):
   * whether the API takes a bound token depends on the certificate the request presents.
   */
  getWithTokens(
    url: string,
    tokens: TokenCache,
    ca: string,
    identity?: KeyAndCertificate,
  ): Promise<ApiAnswer> {
    return get(this.authorized({ origins: new URL(url).origin, tokens }, ca, identity), url)
  }

  /**
   * A TokenCache for an RFC 8705 client (`tlsClientAuth()`): its token requests go through
   * an Agent presenting `identity`, the certificate that authenticates the client and
   * that its tokens are bound to.
   */
  tlsClientTokens(
    grant: Omit<ClientCredentialsOptions, 'clientAuth' | 'dispatcher'>,
    ca: string,
    identity?: KeyAndCertificate,
  ): TokenCache {
    return new TokenCache({
      fetchToken: clientCredentials({
        ...grant,
        clientAuth: tlsClientAuth(),
        dispatcher: this.make(ca, identity),
      }),
    })
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#agents.splice(0).map((agent) => agent.close()))
  }
}

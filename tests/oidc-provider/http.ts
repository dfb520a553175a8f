// Requests to the strong-authentication environment's API (mtls-provider.ts), and the
// undici Agents the tests make — with or without a TLS client certificate — closed
// together at the end of each test.
import { Agent, type Dispatcher, request } from 'undici'
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

/** Agents made during one test; `closeAll()` in afterEach. */
export class Agents {
  readonly #agents: Agent[] = []

  /**
   * An Agent trusting the environment's CA, presenting `identity` as its TLS client
   * certificate when given (RFC 8705: the token request's and the API's dispatcher).
   */
  make(ca: string, identity?: KeyAndCertificate): Agent {
    const agent = new Agent({
      keepAliveTimeout: 10_000,
      connect: identity === undefined ? { ca } : { ca, cert: identity.cert, key: identity.key },
    })
    this.#agents.push(agent)
    return agent
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#agents.splice(0).map((agent) => agent.close()))
  }
}

import type { Dispatcher } from 'undici'
import { TokenRequestError } from '../errors.js'
import type { TokenResponse } from '../types.js'
import { type ClientAuth, formEncode } from './client-auth.js'
import { redactor } from './redaction.js'
import { parseTokenResponse, type RawResponse } from './token-response.js'

/** Where and how token requests go: the part every grant shares. */
export interface TokenEndpointOptions {
  tokenUrl: string | URL
  clientId: string
  clientAuth: ClientAuth
  /** Send token requests through this undici dispatcher; default: global `fetch`. */
  dispatcher?: Dispatcher | undefined
}

/** Sends one token request with a grant's form parameters; resolves to the parsed answer. */
export type TokenRequest = (params: URLSearchParams, signal: AbortSignal) => Promise<TokenResponse>

/** Most bytes of a token endpoint's answer that are read. */
const maxResponseBytes = 1024 * 1024
/** Form parameters a client authentication adds that are not credentials. */
const notCredentials = new Set(['client_id', 'client_assertion_type'])

/**
 * The one token-request core (RFC 6749 §3.2): a form POST to the token endpoint
 * with the client's authentication added, sent without following redirects,
 * its answer read up to 1 MiB and parsed (§5.1, §5.2) with every credential the
 * client authentication added redacted from what reaches an error.
 */
export function tokenRequest(options: TokenEndpointOptions): TokenRequest {
  const url = new URL(options.tokenUrl)
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError(`tokenUrl must be an http(s) URL, got ${url.protocol}`)
  }
  if (url.username !== '' || url.password !== '') {
    // fetch() refuses such a URL with an error that quotes it, password and all.
    throw new TypeError(
      'tokenUrl must not contain a username or password; use clientId/clientSecret',
    )
  }
  const { clientId, clientAuth, dispatcher } = options
  if (typeof clientId !== 'string' || clientId.length === 0) {
    throw new TypeError('a token request needs a clientId')
  }
  // Where error messages say the request went: never the userinfo or query.
  const endpoint = `${url.origin}${url.pathname}`
  const redactors = new RedactorCache(clientId)

  return async (params, signal) => {
    const form = new URLSearchParams(params)
    const headers: Record<string, string> = {
      accept: 'application/json',
      'content-type': 'application/x-www-form-urlencoded',
    }
    await clientAuth({ tokenUrl: url, clientId, form, headers, signal })
    const redact = redactors.for(credentialsAdded(params, form, headers))
    let raw: RawResponse
    try {
      raw = dispatcher
        ? await sendWithDispatcher(dispatcher, url, endpoint, headers, form.toString(), signal)
        : await sendWithFetch(url, headers, form.toString(), signal)
    } catch (error) {
      if (signal.aborted) throw signal.reason
      if (error instanceof TokenRequestError) throw error
      throw new TokenRequestError(`Token endpoint ${endpoint} could not be reached`, {
        cause: error,
      })
    }
    return parseTokenResponse(raw, endpoint, redact)
  }
}

/** The values a client authentication added to the request: its credentials. */
function credentialsAdded(
  before: URLSearchParams,
  form: URLSearchParams,
  headers: Record<string, string>,
): string[] {
  const credentials: string[] = []
  for (const [name, value] of form) {
    if (!notCredentials.has(name) && !before.getAll(name).includes(value)) credentials.push(value)
  }
  for (const [name, value] of Object.entries(headers)) {
    if (name === 'accept' || name === 'content-type') continue
    // RFC 7617: the Basic credential is base64 of "id:secret" (form-encoded, RFC 6749 §2.3.1).
    credentials.push(/^Basic\s+(.+)$/i.exec(value)?.[1] ?? value)
  }
  return credentials
}

/** The redactor for a set of credentials, made once (a regex per credential set). */
class RedactorCache {
  readonly #clientId: string
  #credentials = ''
  #redact: (text: string) => string = (text) => text

  constructor(clientId: string) {
    this.#clientId = clientId
  }

  for(credentials: readonly string[]): (text: string) => string {
    const id = credentials.join('\0')
    if (id === this.#credentials) return this.#redact
    const secrets: string[] = []
    for (const credential of credentials) {
      const secret = basicSecret(credential) ?? credential
      // The pair first, so that "id:secret" goes as a whole; the Basic credential is taken
      // out whichever method sent the secret.
      secrets.push(
        `${this.#clientId}:${secret}`,
        secret,
        Buffer.from(`${formEncode(this.#clientId)}:${formEncode(secret)}`).toString('base64'),
      )
      if (secret !== credential) secrets.push(credential)
    }
    this.#credentials = id
    this.#redact = redactor(secrets)
    return this.#redact
  }
}

/** The secret inside a Basic credential (`base64(form(id):form(secret))`), if it is one. */
function basicSecret(credential: string): string | undefined {
  if (!/^[A-Za-z0-9+/]+=*$/.test(credential)) return undefined
  const decoded = Buffer.from(credential, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  try {
    return new URLSearchParams(`v=${decoded.slice(colon + 1)}`).get('v') ?? undefined
  } catch {
    return undefined
  }
}

async function sendWithFetch(
  url: URL,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal,
): Promise<RawResponse> {
  const response = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal })
  return {
    status: response.status,
    headers: response.headers,
    text: await readCapped(response.body ?? [], signal),
  }
}

async function sendWithDispatcher(
  dispatcher: Dispatcher,
  url: URL,
  endpoint: string,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal,
): Promise<RawResponse> {
  // Never follow a redirect, whatever the dispatcher holds: a 307/308 resends the body
  // (RFC 9110 §15.4.8-9), client_secret_post and all, and the target's token would be
  // cached. undici's redirect() interceptor (7 and 8) passes a request with
  // maxRedirections 0 on untouched, and undici's Request accepts 0 in both (any other
  // value: "maxRedirections is not supported, use the redirect interceptor").
  const options: Dispatcher.RequestOptions & { maxRedirections: number } = {
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
    method: 'POST',
    headers,
    body,
    signal,
    maxRedirections: 0,
  }
  const response = await dispatcher.request(options)
  // A dispatcher that follows regardless (redirect() records each hop in the context's
  // history): the answer came from elsewhere, so it is not used.
  const { history } = (response.context ?? {}) as { history?: unknown }
  if (Array.isArray(history) && history.length > 1) {
    response.body.dump().catch(() => {})
    throw new TokenRequestError(
      `The dispatcher followed a redirect from token endpoint ${endpoint}; token requests do not follow redirects, so its answer is not used`,
    )
  }
  const text = await readCapped(response.body, signal)
  return {
    status: response.statusCode,
    headers: {
      get(name) {
        const value = response.headers[name]
        return Array.isArray(value) ? value.join(', ') : value
      },
    },
    text,
  }
}

/**
 * The body as text, up to `maxResponseBytes`. Gives up when `signal` aborts: fetch()
 * ends its body then, but not every fetch does (msw's does not), and a body that
 * stalls must not outlive the caller's signal.
 */
async function readCapped(
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  signal: AbortSignal,
): Promise<string> {
  const chunks: Uint8Array[] = []
  let size = 0
  const iterator =
    Symbol.asyncIterator in body ? body[Symbol.asyncIterator]() : body[Symbol.iterator]()
  // Stop reading without waiting for the stream to close: cancelling a fetch body may
  // never settle (it does not under msw's patched fetch), and cancel() on the stream
  // itself would throw, as this iterator holds its lock.
  const stop = (): void => {
    Promise.resolve(iterator.return?.()).catch(() => {})
  }
  let onAbort = (): void => {}
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason)
  })
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    if (signal.aborted) throw signal.reason
    for (
      let next = await Promise.race([iterator.next(), aborted]);
      !next.done;
      next = await Promise.race([iterator.next(), aborted])
    ) {
      size += next.value.byteLength
      if (size > maxResponseBytes) {
        throw new TokenRequestError(
          `Token endpoint answered with more than ${maxResponseBytes} bytes; not a token response`,
        )
      }
      chunks.push(next.value)
    }
  } catch (error) {
    stop()
    throw error
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
  return Buffer.concat(chunks).toString('utf8')
}

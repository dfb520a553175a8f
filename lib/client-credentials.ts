import type { Dispatcher } from 'undici'
import { TokenRequestError } from './errors.js'
import type { FetchToken, TokenResponse } from './types.js'

/** Options of `clientCredentials()`: the RFC 6749 §4.4 client credentials grant. */
export interface ClientCredentialsOptions {
  /** The token endpoint. */
  tokenUrl: string | URL
  clientId: string
  clientSecret: string
  /** One scope, or several (sent space-separated, RFC 6749 §3.3). */
  scope?: string | string[]
  /** The API the token is for, as many providers (Auth0, Okta) name it. */
  audience?: string
  /** Resource indicators (RFC 8707), sent once each. */
  resource?: string | string[]
  /** How the client authenticates (RFC 6749 §2.3.1); default `client_secret_basic`. */
  authMethod?: 'client_secret_basic' | 'client_secret_post'
  /** More form parameters for the token request. */
  extraParams?: Record<string, string>
  /** Send the token request through this undici dispatcher; default: global `fetch`. */
  dispatcher?: Dispatcher
}

/** Most bytes of a token endpoint's answer that are read. */
const maxResponseBytes = 1024 * 1024

interface RawResponse {
  status: number
  headers: { get(name: string): string | null | undefined }
  text: string
}

/**
 * A `FetchToken` for the OAuth 2 client credentials grant (RFC 6749 §4.4).
 * Redirects are never followed; answers are read up to 1 MiB.
 */
export function clientCredentials(options: ClientCredentialsOptions): FetchToken {
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
  if (typeof options.clientId !== 'string' || options.clientId.length === 0) {
    throw new TypeError('clientCredentials needs a clientId')
  }
  if (typeof options.clientSecret !== 'string' || options.clientSecret.length === 0) {
    throw new TypeError('clientCredentials needs a clientSecret')
  }
  // Where error messages say the request went: never the userinfo or query.
  const endpoint = `${url.origin}${url.pathname}`
  const { clientId, clientSecret, dispatcher } = options
  const authMethod = options.authMethod ?? 'client_secret_basic'
  if (authMethod !== 'client_secret_basic' && authMethod !== 'client_secret_post') {
    throw new TypeError(`authMethod must be client_secret_basic or client_secret_post`)
  }

  const form = new URLSearchParams({ grant_type: 'client_credentials' })
  const scope = Array.isArray(options.scope) ? options.scope.join(' ') : options.scope
  if (scope) form.set('scope', scope)
  if (options.audience) form.set('audience', options.audience)
  for (const resource of [options.resource ?? []].flat()) form.append('resource', resource)
  for (const [name, value] of Object.entries(options.extraParams ?? {})) form.set(name, value)

  const headers: Record<string, string> = {
    accept: 'application/json',
    'content-type': 'application/x-www-form-urlencoded',
  }
  if (authMethod === 'client_secret_basic') {
    // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and base64'd.
    const credentials = `${formEncode(clientId)}:${formEncode(clientSecret)}`
    headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`
  } else {
    form.set('client_id', clientId)
    form.set('client_secret', clientSecret)
  }
  const body = form.toString()
  // Some servers echo the request in error_description (or embed it, JSON-escaped, in a
  // JSON string): take the secret out in any encoding it was sent or echoed in. The pair
  // comes first so that "id:secret" goes as a whole; the Basic credential is taken out
  // whichever method sent the secret.
  const redact = redactor([
    `${clientId}:${clientSecret}`,
    clientSecret,
    Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64'),
  ])

  return async ({ signal }) => {
    let raw: RawResponse
    try {
      raw = dispatcher
        ? await sendWithDispatcher(dispatcher, url, endpoint, headers, body, signal)
        : await sendWithFetch(url, headers, body, signal)
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

function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2)
}

/**
 * A function that replaces every occurrence of each of `secrets` with `[redacted]`, in
 * any mix of the encodings a secret travels or is echoed in, character by character:
 * as is; percent-encoded UTF-8 (RFC 3986 §2.1, hex in either case — so both
 * encodeURIComponent and form encoding, whichever characters they leave alone);
 * `+` for a space (application/x-www-form-urlencoded, as in RFC 6749 §2.3.1);
 * JSON string escapes (RFC 8259 §7: `\"`, `\\`, `\/`, `\uXXXX` in either case) and
 * those percent-encoded. Earlier secrets win where they overlap, so list a
 * longer secret that contains a shorter one first. Over-redacts rather than under:
 * letters match in either case.
 */
function redactor(secrets: readonly string[]): (text: string) => string {
  const patterns = secrets.filter((secret) => secret.length > 0).map(flexiblePattern)
  if (patterns.length === 0) return (text) => text
  const pattern = new RegExp(patterns.join('|'), 'gi')
  return (text) => text.replace(pattern, '[redacted]')
}

/** A regular expression source matching `secret` in any mix of the encodings `redactor` knows. */
function flexiblePattern(secret: string): string {
  let source = ''
  for (const char of secret) {
    const forms = new Set<string>([char])
    // JSON escapes: the shortest (\" \\ \n …), \uXXXX for every UTF-16 unit, \/.
    const json = new Set<string>([JSON.stringify(char).slice(1, -1)])
    let units = ''
    for (let i = 0; i < char.length; i++) {
      units += `\\u${char.charCodeAt(i).toString(16).padStart(4, '0')}`
    }
    json.add(units)
    if (char === '/') json.add('\\/')
    for (const escaped of json) {
      forms.add(escaped)
      forms.add(percentEncode(escaped))
    }
    forms.add(percentEncode(char))
    if (char === ' ') forms.add('+')
    source += `(?:${[...forms].map(escapeRegExp).join('|')})`
  }
  return source
}

/** Every byte of the UTF-8 encoding as %XX. */
function percentEncode(text: string): string {
  let encoded = ''
  for (const byte of Buffer.from(text, 'utf8')) {
    encoded += `%${byte.toString(16).padStart(2, '0')}`
  }
  return encoded
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')
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

/** RFC 6749 §5.1 (success) and §5.2 (error) responses. */
function parseTokenResponse(
  raw: RawResponse,
  endpoint: string,
  redact: (text: string) => string,
): TokenResponse {
  const { status } = raw
  const retryAfter = parseRetryAfter(raw.headers.get('retry-after'))
  const contentType = redact(raw.headers.get('content-type') ?? 'no content-type').slice(0, 100)
  let json: unknown
  try {
    json = JSON.parse(raw.text)
  } catch {
    json = undefined
  }
  const fields =
    typeof json === 'object' && json !== null && !Array.isArray(json) ? json : undefined

  if (status < 200 || status >= 300) {
    if (status >= 300 && status < 400) {
      throw new TokenRequestError(
        `Token endpoint ${endpoint} answered ${status} (a redirect); token requests do not follow redirects`,
        { status },
      )
    }
    const oauth = fields === undefined ? undefined : oauthError(fields, redact)
    if (oauth === undefined) {
      throw new TokenRequestError(
        `Token endpoint ${endpoint} answered ${status} without an OAuth error (${contentType})`,
        { status, retryAfter },
      )
    }
    const description = oauth.errorDescription ? `: ${oauth.errorDescription}` : ''
    throw new TokenRequestError(
      `Token endpoint ${endpoint} answered ${status} ${oauth.error}${description}`,
      { status, retryAfter, ...oauth },
    )
  }

  if (fields === undefined) {
    throw new TokenRequestError(
      `Token endpoint ${endpoint} answered ${status} with a body that is not a JSON object (${contentType})`,
      { status },
    )
  }
  const {
    access_token: accessToken,
    token_type: tokenType,
    expires_in: expiresIn,
    scope,
    ...extra
  } = fields as Record<string, unknown>
  if (typeof accessToken !== 'string' || accessToken.length === 0) {
    const oauth = oauthError(fields, redact)
    if (oauth !== undefined) {
      // Some servers send an RFC 6749 §5.2 error with 200.
      throw new TokenRequestError(
        `Token endpoint ${endpoint} answered ${status} ${oauth.error}${oauth.errorDescription ? `: ${oauth.errorDescription}` : ''}`,
        { status, ...oauth },
      )
    }
    throw new TokenRequestError(
      `Token endpoint ${endpoint} answered ${status} without an access_token (or it is not a non-empty string)`,
      { status },
    )
  }
  if (tokenType !== undefined && (typeof tokenType !== 'string' || tokenType.length === 0)) {
    throw new TokenRequestError(
      `Token endpoint ${endpoint} answered ${status} with a token_type that is not a string`,
      { status },
    )
  }
  if (
    expiresIn !== undefined &&
    expiresIn !== null &&
    typeof expiresIn !== 'number' &&
    typeof expiresIn !== 'string'
  ) {
    throw new TokenRequestError(
      `Token endpoint ${endpoint} answered ${status} with an expires_in that is not a number`,
      { status },
    )
  }
  const response: TokenResponse = { ...extra, accessToken }
  if (tokenType !== undefined) response.tokenType = tokenType
  // A numeric string is allowed here (many servers send one); TokenCache checks the value.
  if (expiresIn !== undefined && expiresIn !== null) response.expiresIn = expiresIn as number
  if (scope !== undefined) response.scope = scope
  return response
}

function oauthError(
  fields: object,
  redact: (text: string) => string,
): { error: string; errorDescription?: string; errorUri?: string } | undefined {
  const {
    error,
    error_description: description,
    error_uri: uri,
  } = fields as Record<string, unknown>
  if (typeof error !== 'string' || error.length === 0) return undefined
  const result: { error: string; errorDescription?: string; errorUri?: string } = {
    error: redact(error).slice(0, 200),
  }
  if (typeof description === 'string') result.errorDescription = redact(description).slice(0, 1000)
  if (typeof uri === 'string') result.errorUri = redact(uri).slice(0, 1000)
  return result
}

/** `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date; seconds from now. */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text)
  const date = Date.parse(text)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, Math.ceil((date - now) / 1000))
}

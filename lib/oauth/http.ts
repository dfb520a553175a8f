import type { Dispatcher } from 'undici'
import { TokenRequestError } from '../errors.js'

/** An answer from the authorization server, read (capped) but not yet interpreted. */
export interface RawResponse {
  status: number
  headers: { get(name: string): string | null | undefined }
  text: string
}

/** Where a request goes, and how error messages name it. */
export interface Target {
  readonly url: URL
  /** E.g. `Token endpoint https://as.example/token`: never a query or userinfo. */
  readonly name: string
  /** What its answer should be, e.g. `a token response`. */
  readonly expected: string
}

/** One request to the authorization server. */
export interface HttpRequest {
  readonly method: 'GET' | 'POST'
  readonly headers: Record<string, string>
  readonly body?: string | undefined
}

/**
 * `value` as an http(s) URL without userinfo, or why it is not one (never quoting it:
 * it may hold a password). fetch() refuses a URL with userinfo with an error that
 * quotes it, password and all.
 */
export function httpUrl(value: unknown, name: string): URL | string {
  let url: URL
  try {
    url = new URL(value as string | URL)
  } catch {
    return `${name} must be an http(s) URL`
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return `${name} must be an http(s) URL, got ${url.protocol}`
  }
  if (url.username !== '' || url.password !== '') {
    return `${name} must not contain a username or password`
  }
  return url
}

/** Most bytes of an answer that are read. */
export const maxResponseBytes: number = 1024 * 1024

/**
 * Sends `request` to `target` through `dispatcher` (default: global `fetch`) without
 * following a redirect, and reads the answer up to `maxResponseBytes`. Anything but an
 * answer — the server could not be reached, a redirect followed anyway, an answer too
 * large — is a TokenRequestError; an abort rejects with the signal's reason.
 */
export async function send(
  target: Target,
  request: HttpRequest,
  dispatcher: Dispatcher | undefined,
  signal: AbortSignal,
): Promise<RawResponse> {
  try {
    return dispatcher
      ? await sendWithDispatcher(dispatcher, target, request, signal)
      : await sendWithFetch(target, request, signal)
  } catch (error) {
    if (signal.aborted) throw signal.reason
    if (error instanceof TokenRequestError) throw error
    throw new TokenRequestError(`${target.name} could not be reached`, { cause: error })
  }
}

async function sendWithFetch(
  target: Target,
  request: HttpRequest,
  signal: AbortSignal,
): Promise<RawResponse> {
  const { method, headers, body } = request
  const response = await fetch(target.url, { method, headers, body, redirect: 'manual', signal })
  return {
    status: response.status,
    headers: response.headers,
    text: await readCapped(response.body ?? [], target, signal),
  }
}

async function sendWithDispatcher(
  dispatcher: Dispatcher,
  target: Target,
  request: HttpRequest,
  signal: AbortSignal,
): Promise<RawResponse> {
  const { url } = target
  // Never follow a redirect, whatever the dispatcher holds: a 307/308 resends the body
  // (RFC 9110 §15.4.8-9), client_secret_post and all, and the target's token (or
  // metadata) would be used. undici's redirect() interceptor (7 and 8) passes a request
  // with maxRedirections 0 on untouched, and undici's Request accepts 0 in both (any other
  // value: "maxRedirections is not supported, use the redirect interceptor").
  const options: Dispatcher.RequestOptions & { maxRedirections: number } = {
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
    method: request.method,
    headers: request.headers,
    body: request.body ?? null,
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
      `The dispatcher followed a redirect from ${lowerFirst(target.name)}; requests to the authorization server do not follow redirects, so its answer is not used`,
    )
  }
  const text = await readCapped(response.body, target, signal)
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

function lowerFirst(text: string): string {
  return `${text.charAt(0).toLowerCase()}${text.slice(1)}`
}

/**
 * The body as text, up to `maxResponseBytes`. Gives up when `signal` aborts: fetch()
 * ends its body then, but not every fetch does (msw's does not), and a body that
 * stalls must not outlive the caller's signal.
 */
async function readCapped(
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  target: Target,
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
          `${target.name} answered with more than ${maxResponseBytes} bytes; not ${target.expected}`,
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

import type { Attributes } from '@opentelemetry/api'
import type { ErrorSummary, FetchTraceMessage } from '../diagnostics.js'
import { attributeNames as names } from './names.js'

/**
 * Builds the attributes of every metric and span: the key only when the user opted in (it
 * may name a tenant), never a token or a secret — what goes in comes from the diagnostics
 * messages, which carry none.
 */
export class AttributeBuilder {
  readonly #includeKey: boolean

  constructor(includeKey: boolean) {
    this.#includeKey = includeKey
  }

  /** Whether the key goes in: metrics then keep a series per key. */
  get includesKey(): boolean {
    return this.#includeKey
  }

  /** What every fetch metric and span carries: reason, grant (when known), key. */
  ofFetch(message: FetchTraceMessage): Attributes {
    const base: Attributes = { [names.reason]: message.reason }
    if (message.grant !== undefined) base[names.grant] = message.grant
    return this.of(message.key, base)
  }

  /** `base`, with the key when opted in. */
  of(key: string | undefined, base: Attributes = {}): Attributes {
    if (this.#includeKey && key !== undefined) base[names.key] = key
    return base
  }
}

/**
 * `error.type` (semantic conventions): the OAuth error code, else the token endpoint's HTTP
 * status, else the error's name — each from a small set, unlike messages.
 */
export function errorType(error: ErrorSummary): string {
  return error.error ?? (error.status === undefined ? error.name : String(error.status))
}

/** `error.type` and, when the token endpoint answered, its status. */
export function errorAttributes(error: ErrorSummary, into: Attributes): Attributes {
  into[names.errorType] = errorType(error)
  if (error.status !== undefined) into[names.httpStatus] = error.status
  return into
}

/** `server.address` and `server.port` of an origin (`https://api.example.com` → …, 443). */
export function serverAttributes(origin: string, into: Attributes): Attributes {
  try {
    const url = new URL(origin)
    into[names.serverAddress] = url.hostname
    into[names.serverPort] = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
  } catch {
    // An origin always parses (it was matched); nothing to add if not.
  }
  return into
}

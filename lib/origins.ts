/** Which origins get a token: an allow-list or a predicate. */
export type Origins = string | URL | ReadonlyArray<string | URL> | ((origin: string) => boolean)

/**
 * `https://API.example.com:443/x` → `https://api.example.com`: scheme and host
 * lower-cased, default port dropped, no path (the WHATWG URL origin). Anything
 * without an http(s) origin becomes `'null'`, which nothing matches.
 */
function normalizeOrigin(origin: string | URL): string {
  try {
    return (typeof origin === 'string' ? new URL(origin) : origin).origin
  } catch {
    return 'null'
  }
}

/** Answers, fast, whether a request's origin gets the token, and its normalised form. */
export class OriginMatcher {
  readonly #allowed: ReadonlySet<string> | undefined
  readonly #predicate: ((origin: string) => boolean) | undefined
  /** Raw origin string → its normalised form; bounded. */
  readonly #normalized = new Map<string, string>()

  constructor(origins: Origins) {
    if (typeof origins === 'function') {
      this.#predicate = origins
      return
    }
    const list: ReadonlyArray<string | URL> =
      typeof origins === 'string' || origins instanceof URL ? [origins] : origins
    if (!Array.isArray(list) || list.length === 0) {
      throw new TypeError(
        'accessToken needs `origins`: the origin(s) that may see the token, or a predicate',
      )
    }
    const allowed = new Set<string>()
    for (const entry of list) {
      const origin = normalizeOrigin(entry)
      if (origin === 'null')
        throw new TypeError(`origins: ${String(entry)} is not an http(s) origin`)
      allowed.add(origin)
    }
    this.#allowed = allowed
  }

  /** The normalised origin when it gets the token, else undefined. */
  match(origin: string | URL): string | undefined {
    const normalized = this.normalize(origin)
    if (normalized === 'null') return undefined
    if (this.#allowed !== undefined) return this.#allowed.has(normalized) ? normalized : undefined
    return (this.#predicate as (origin: string) => boolean)(normalized) === true
      ? normalized
      : undefined
  }

  normalize(origin: string | URL): string {
    if (typeof origin !== 'string') return normalizeOrigin(origin)
    let normalized = this.#normalized.get(origin)
    if (normalized === undefined) {
      normalized = normalizeOrigin(origin)
      if (this.#normalized.size >= 1000) this.#normalized.clear()
      this.#normalized.set(origin, normalized)
    }
    return normalized
  }
}

/**
 * Whether a caller's `Host` header names `origin`'s own authority (any case, the
 * default port spelled out or not). Anything else would send the token to another
 * virtual host behind the same address (RFC 9110 §7.2), so it is refused.
 */
export function isOwnAuthority(host: unknown, origin: string): boolean {
  if (Array.isArray(host)) return host.length > 0 && host.every((h) => isOwnAuthority(h, origin))
  const text = Buffer.isBuffer(host) ? host.toString('latin1') : host
  if (typeof text !== 'string') return false
  const separator = origin.indexOf('://')
  // The normalised origin's host is lower-case with the default port dropped: the common case.
  const value = text.trim().toLowerCase()
  if (value === origin.slice(separator + 3)) return true
  // uri-host [ ":" port ] only: no userinfo, path or anything a URL parser would reinterpret.
  if (value === '' || /[@/\\?#\s]/.test(value)) return false
  return normalizeOrigin(`${origin.slice(0, separator)}://${value}`) === origin
}

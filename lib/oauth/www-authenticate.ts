/**
 * `WWW-Authenticate` (RFC 9110 §11.6.1), parsed by one left-to-right scan:
 *
 *   WWW-Authenticate = #challenge
 *   challenge   = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
 *   auth-param  = token BWS "=" BWS ( token / quoted-string )
 *   token68     = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
 *
 * A list element that is `token BWS "="` is an auth-param of the challenge before it; any other
 * element that starts with a token starts a new challenge. Empty list elements are ignored.
 * Malformed elements are skipped up to the next comma outside a quoted string; nothing throws.
 */

/** One challenge of a `WWW-Authenticate` header. */
export interface Challenge {
  /** The auth-scheme, lower-cased: scheme names are case-insensitive. */
  scheme: string
  /**
   * The auth-params, by lower-cased name (names are case-insensitive); values unquoted and
   * unescaped, with their case. A name sent twice keeps its first value. A null-prototype
   * object: `__proto__` or `constructor` are plain parameters, and absent names read undefined.
   */
  params: Record<string, string>
  /** The token68 form (`Negotiate abc==`), as sent. A challenge has it or params, not both. */
  token68?: string
}

/**
 * Caps, so that the work per 401 is bounded whatever the server sends. The scan is linear, but a
 * server's header is bounded only by the client's `maxHeaderSize`, which an application may have
 * raised; and a real challenge is a few hundred bytes. So at most the first 16 KiB of the header,
 * all lines together, are parsed (undici's default limit for all headers together is 16 KiB).
 * An element cut by the cap is dropped, never taken in part: `error=invalid_token_x` cut to
 * `invalid_token` would be a different code. At most 32 challenges are kept, and 32 params per
 * challenge (later ones are skipped), so that the objects built are bounded as well.
 */
const MAX_PARSED_LENGTH = 16 * 1024
const MAX_CHALLENGES = 32
const MAX_PARAMS = 32

const TCHAR = 1
const TOKEN68 = 2
/** Character classes of the ASCII range; anything above is neither tchar nor token68. */
const CLASSES = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~") CLASSES[c.charCodeAt(0)] = TCHAR
CLASSES['/'.charCodeAt(0)] = TOKEN68
for (const c of '-._~+') CLASSES[c.charCodeAt(0)] = TCHAR | TOKEN68
for (let c = 0x30; c <= 0x39; c++) CLASSES[c] = TCHAR | TOKEN68
for (let c = 0x41; c <= 0x5a; c++) CLASSES[c] = TCHAR | TOKEN68
for (let c = 0x61; c <= 0x7a; c++) CLASSES[c] = TCHAR | TOKEN68

const TAB = 0x09
const SPACE = 0x20
const QUOTE = 0x22
const COMMA = 0x2c
const EQUALS = 0x3d
const BACKSLASH = 0x5c

/** A cursor over the first `end` characters of one header line. */
class Scanner {
  pos = 0
  readonly text: string
  readonly end: number
  /** Whether the line goes on past `end`: what reaches `end` may be cut. */
  readonly truncated: boolean

  constructor(text: string, budget: number) {
    this.text = text
    this.end = Math.min(text.length, budget)
    this.truncated = text.length > this.end
  }

  /** The character code at the cursor, or -1 at the end. */
  peek(): number {
    return this.pos < this.end ? this.text.charCodeAt(this.pos) : -1
  }

  atEnd(): boolean {
    return this.pos >= this.end
  }

  /** At the end, and the line goes on past it: what was being read may be incomplete. */
  get cut(): boolean {
    return this.truncated && this.pos >= this.end
  }

  /** Skips OWS / BWS. */
  skipWhitespace(): void {
    let c = this.peek()
    while (c === SPACE || c === TAB) {
      this.pos++
      c = this.peek()
    }
  }

  /** Skips OWS and commas: separators and empty list elements. */
  skipSeparators(): void {
    let c = this.peek()
    while (c === SPACE || c === TAB || c === COMMA) {
      this.pos++
      c = this.peek()
    }
  }

  /** Reads a run of characters of `cls`; returns it, or '' when there is none. */
  run(cls: number): string {
    const start = this.pos
    const { text, end } = this
    let i = start
    while (i < end) {
      const c = text.charCodeAt(i)
      if (c >= 128 || ((CLASSES[c] ?? 0) & cls) === 0) break
      i++
    }
    this.pos = i
    return text.slice(start, i)
  }

  /**
   * At a '"': reads a quoted-string, unescaping quoted-pairs. Returns undefined, at the end,
   * when it is not terminated. `build` false skips it without building the value.
   */
  quoted(build: boolean): string | undefined {
    const { text, end } = this
    let i = this.pos + 1
    let chunk = i
    let value = ''
    while (i < end) {
      const c = text.charCodeAt(i)
      if (c === QUOTE) {
        this.pos = i + 1
        return build ? value + text.slice(chunk, i) : ''
      }
      if (c === BACKSLASH) {
        if (build) value += text.slice(chunk, i)
        chunk = i + 1 // the escaped character starts the next chunk
        i += 2
      } else {
        i++
      }
    }
    this.pos = end
    return undefined
  }

  /** Skips the rest of a malformed list element: to the next comma outside a quoted string. */
  skipElement(): void {
    for (let c = this.peek(); c !== -1 && c !== COMMA; c = this.peek()) {
      if (c === QUOTE) this.quoted(false)
      else this.pos++
    }
  }

  /** Whether the element just read ends here: OWS, then a comma or the (real) end. */
  elementEnds(): boolean {
    this.skipWhitespace()
    return this.peek() === COMMA || (this.atEnd() && !this.truncated)
  }
}

/**
 * Parses one header line into `out`, within `budget` characters. Returns false once no more
 * challenges are to be read (the cap is reached).
 */
function parseLine(text: string, budget: number, out: Challenge[]): boolean {
  const scan = new Scanner(text, budget)
  let current: Challenge | undefined
  let paramCount = 0
  for (;;) {
    scan.skipSeparators()
    if (scan.atEnd()) return true
    const name = scan.run(TCHAR)
    if (name === '') {
      scan.skipElement()
      continue
    }
    const afterName = scan.pos
    scan.skipWhitespace()
    if (scan.cut) return true // a scheme or a param name, cut by the cap

    if (scan.peek() === EQUALS) {
      // auth-param = token BWS "=" BWS ( token / quoted-string )
      scan.pos++
      scan.skipWhitespace()
      // undefined: an unterminated quoted-string, or no value
      const value = scan.peek() === QUOTE ? scan.quoted(true) : scan.run(TCHAR) || undefined
      if (!scan.elementEnds()) {
        if (scan.cut) return true // a value cut by the cap, or undecided: dropped
        scan.skipElement() // `name=value` followed by more than OWS: malformed, dropped
        continue
      }
      // An auth-param before any challenge, or after a token68, belongs to none: dropped.
      if (value === undefined || current === undefined || current.token68 !== undefined) continue
      const key = name.toLowerCase()
      if (paramCount < MAX_PARAMS && !Object.hasOwn(current.params, key)) {
        current.params[key] = value
        paramCount++
      }
      continue
    }

    // A new challenge: auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    if (scan.pos === afterName && !scan.atEnd() && scan.peek() !== COMMA) {
      scan.skipElement() // a token followed by neither space, "=", "," nor the end: malformed
      continue
    }
    if (out.length >= MAX_CHALLENGES) return false
    current = { scheme: name.toLowerCase(), params: Object.create(null) }
    paramCount = 0
    out.push(current)
    // token68, when what follows the scheme is one and then the element ends. Otherwise
    // auth-params follow (or garbage), and the scan resumes here: each character is read at most
    // twice, so the scan stays linear.
    const start = scan.pos
    if (scan.run(TOKEN68) !== '') {
      while (scan.peek() === EQUALS) scan.pos++
      const stop = scan.pos
      if (scan.elementEnds()) {
        current.token68 = text.slice(start, stop)
        continue
      }
      if (scan.cut) return true // a token68 cut by the cap, or undecided: dropped
    }
    scan.pos = start
  }
}

/**
 * The challenges of a `WWW-Authenticate` header — one value, or the values of several header
 * lines — in order. Linear in the header's length, and parses at most its first 16 KiB.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const challenges: Challenge[] = []
  if (header === undefined) return challenges
  const lines = typeof header === 'string' ? [header] : header
  let budget = MAX_PARSED_LENGTH
  for (const line of lines) {
    if (budget <= 0) break
    if (typeof line !== 'string') continue
    if (!parseLine(line, budget, challenges)) break
    budget -= Math.min(line.length, budget)
  }
  return challenges
}

/**
 * Whether a 401's `WWW-Authenticate` allows a retry with a new token.
 * RFC 6750 §3.1: `invalid_token` means the token is expired, revoked or
 * malformed, so a new one may help; `invalid_request` or `insufficient_scope`
 * will fail the same way with any token. No challenge, or one without an error
 * (RFC 6750 §3: the client may not have sent a token), also allows a retry.
 *
 * Only Bearer (RFC 6750) and DPoP (RFC 9449 §7.1) challenges count: they are the schemes a
 * token from this package is sent with, and the ones whose `error` codes RFC 6750 defines.
 * Another scheme's `error` parameter means whatever that scheme says, and says nothing about
 * our token: it neither blocks nor allows a retry. So: allowed when no Bearer or DPoP
 * challenge has an `error`, or when any of them has `error="invalid_token"`.
 */
export function challengeAllowsRetry(header: string | string[] | undefined): boolean {
  let failsAnyway = false // some Bearer or DPoP challenge has an error other than invalid_token
  for (const { scheme, params } of parseChallenges(header)) {
    if (scheme !== 'bearer' && scheme !== 'dpop') continue
    const error = params.error
    if (error === 'invalid_token') return true
    if (error !== undefined) failsAnyway = true
  }
  return !failsAnyway
}

/**
 * The `error` code of the first challenge of `scheme` (lower-case), or undefined when there is
 * no such challenge or it has no `error`. E.g. `use_dpop_nonce` (RFC 9449 §8).
 */
export function challengeError(
  header: string | string[] | undefined,
  scheme: 'bearer' | 'dpop',
): string | undefined {
  return parseChallenges(header).find((challenge) => challenge.scheme === scheme)?.params.error
}

/*
 * Some token endpoints echo the request in `error_description` (or embed it,
 * JSON-escaped, in a JSON string): whatever a client authentication sent as a
 * credential is taken out of every text that reaches an error, in any encoding it
 * was sent or echoed in.
 */

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
export function redactor(secrets: readonly string[]): (text: string) => string {
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

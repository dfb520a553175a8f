import { createHash } from 'node:crypto'

/**
 * A short, non-reversible name for a token, for logs and diagnostics events:
 * the first 12 hex digits of its SHA-256. Never log the token itself.
 */
export function fingerprint(accessToken: string): string {
  return createHash('sha256').update(accessToken).digest('hex').slice(0, 12)
}

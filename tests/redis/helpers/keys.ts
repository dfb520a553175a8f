import { createHash } from 'node:crypto'

/**
 * The Redis name of a cache key's entry (`'token'`) or fetch lock (`'lock'`), as
 * lib/stores/redis.ts names them: `<prefix><kind>:{<SHA-256 of the key>}`.
 */
export function redisKeyName(prefix: string, kind: 'token' | 'lock', key: string): string {
  return `${prefix}${kind}:{${createHash('sha256').update(key).digest('hex')}}`
}

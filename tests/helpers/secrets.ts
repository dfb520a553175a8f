import { inspect } from 'node:util'
import { expect } from 'vitest'

/**
 * Every way a thrown value (or anything else) is commonly turned into text — its
 * message and stack, `String()`, `JSON.stringify()`, `util.inspect()` (which shows
 * enumerable fields and the `cause` chain) — along the whole `cause` chain.
 */
export function renderings(value: unknown): Record<string, string> {
  const views: Record<string, string> = {}
  const seen = new Set<unknown>()
  let current: unknown = value
  for (let depth = 0; depth < 10 && !seen.has(current); depth++) {
    seen.add(current)
    const at = depth === 0 ? '' : `cause${depth}.`
    views[`${at}String()`] = safe(() => String(current))
    views[`${at}JSON.stringify()`] = safe(() => JSON.stringify(current) ?? '')
    views[`${at}inspect()`] = safe(() => inspect(current, { depth: 5 }))
    views[`${at}inspect(showHidden)`] = safe(() => inspect(current, { depth: 5, showHidden: true }))
    if (current instanceof Error) {
      views[`${at}message`] = current.message
      views[`${at}stack`] = current.stack ?? ''
      current = current.cause
      if (current === undefined) break
    } else {
      break
    }
  }
  return views
}

/**
 * Asserts that none of `secrets` occurs in any rendering of `value` (see
 * `renderings`). The failure names the rendering and the secret's index, never
 * the secret itself.
 */
export function expectNoSecrets(value: unknown, secrets: string[]): void {
  for (const secret of secrets) {
    // An empty (or tiny) "secret" would match everything and test nothing.
    expect(secret.length, 'a secret to look for is too short to mean anything').toBeGreaterThan(3)
  }
  const leaks: string[] = []
  for (const [name, text] of Object.entries(renderings(value))) {
    secrets.forEach((secret, index) => {
      if (text.includes(secret)) leaks.push(`secret #${index} in ${name}`)
    })
  }
  expect(leaks, 'secrets leaked').toEqual([])
}

function safe(render: () => string): string {
  try {
    return render()
  } catch (error) {
    return `<could not render: ${error instanceof Error ? error.message : 'unknown'}>`
  }
}

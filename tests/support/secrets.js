// @ts-check
// Looking for secrets in whatever a caller could turn into text: errors, events, rows.
import { AssertionError } from 'node:assert'
import { inspect } from 'node:util'

/**
 * Every way a thrown value (or anything else) is commonly turned into text — its
 * message and stack, `String()`, `JSON.stringify()`, `util.inspect()` (which shows
 * enumerable fields and the `cause` chain) — along the whole `cause` chain.
 * @param {unknown} value
 * @returns {Record<string, string>}
 */
export function renderings(value) {
  /** @type {Record<string, string>} */
  const views = {}
  const seen = new Set()
  let current = value
  for (let depth = 0; depth < 10 && !seen.has(current); depth++) {
    seen.add(current)
    const at = depth === 0 ? '' : `cause${depth}.`
    views[`${at}String()`] = safe(() => String(current))
    views[`${at}JSON.stringify()`] = safe(() => JSON.stringify(current) ?? '')
    views[`${at}inspect()`] = safe(() => inspect(current, { depth: 6 }))
    views[`${at}inspect(showHidden)`] = safe(() => inspect(current, { depth: 6, showHidden: true }))
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
 * Where any of `secrets` occurs in a rendering of `value` (see `renderings`): one
 * `secret #<index> in <rendering>` a find, never the secret itself.
 * @param {unknown} value
 * @param {readonly string[]} secrets
 * @returns {string[]}
 */
export function secretsIn(value, secrets) {
  /** @type {string[]} */
  const found = []
  for (const [name, text] of Object.entries(renderings(value))) {
    secrets.forEach((secret, index) => {
      if (text.includes(secret)) found.push(`secret #${index} in ${name}`)
    })
  }
  return found
}

/**
 * Asserts that none of `secrets` occurs in any rendering of `value`. The failure
 * names the rendering and the secret's index, never the secret itself.
 * @param {unknown} value
 * @param {readonly string[]} secrets
 */
export function expectNoSecrets(value, secrets) {
  for (const secret of secrets) {
    // An empty (or tiny) "secret" would match everything and test nothing.
    if (secret.length <= 3) {
      throw new AssertionError({
        message: 'a secret to look for is too short to mean anything',
        actual: secret.length,
        expected: 3,
        operator: '>',
      })
    }
  }
  const leaks = secretsIn(value, secrets)
  if (leaks.length > 0) {
    throw new AssertionError({
      message: `secrets leaked: ${leaks.join('; ')}`,
      actual: leaks,
      expected: [],
      operator: 'deepStrictEqual',
    })
  }
}

/** @param {() => string} render */
function safe(render) {
  try {
    return render()
  } catch (error) {
    return `<could not render: ${error instanceof Error ? error.message : 'unknown'}>`
  }
}

// @ts-check
/**
 * Every credential the test servers see or issue, registered as they go: the
 * suite-wide scan (tests/setup/secret-scan.ts) checks that none of them shows
 * up in any diagnostics event published during a test file.
 */

/** @type {Set<string>} */
const secrets = new Set()

/** @param {string | undefined} value */
export function registerSecret(value) {
  if (value === undefined || value.length < 4) return
  secrets.add(value)
  // "Bearer abc" → also "abc"; "Basic xyz" → also the decoded "id:secret" and the secret
  const [scheme, credential] = value.split(' ', 2)
  if (credential === undefined) return
  secrets.add(credential)
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(credential, 'base64').toString('utf8')
    secrets.add(decoded)
    const secret = decodeURIComponent(decoded.slice(decoded.indexOf(':') + 1).replace(/\+/g, ' '))
    if (secret.length >= 4) secrets.add(secret)
  }
}

/** @returns {ReadonlySet<string>} */
export function registeredSecrets() {
  return secrets
}

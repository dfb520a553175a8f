import { execFile, execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))

function runDemo(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['examples/readers-aggregator.js'],
      { cwd: root, timeout: 15_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null
        resolve({ code, stdout, stderr })
      },
    )
  })
}

function count(output: string, pattern: RegExp): number {
  const match = pattern.exec(output)
  if (match === null) throw new Error(`demo output has no ${pattern}:\n${output}`)
  return Number(match[1])
}

describe('npm start (examples/readers-aggregator.js)', () => {
  beforeAll(() => {
    // The demo imports the package by its own name, which resolves to ./dist.
    if (!existsSync(new URL('../dist/index.js', import.meta.url))) {
      execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
    }
  }, 60_000)

  it('runs on loopback, exits 0 and prints sane counts', { timeout: 20_000 }, async () => {
    const { code, stdout, stderr } = await runDemo()
    expect(stderr).toBe('')
    expect(code, stdout).toBe(0)

    // Part A: single flight, then one refetch after expiry.
    expect(count(stdout, /100 concurrent tokens\.get\(\) calls → (\d+) token request/)).toBe(1)
    expect(count(stdout, /\((\d+) distinct token\)/)).toBe(1)
    expect(count(stdout, /past expiry: tokens\.get\(\) → (\d+) token request/)).toBe(1)

    // Part B: every request succeeded, the revocation was swallowed and retried.
    expect(count(stdout, /requests served\s+(\d+) \(/)).toBe(500)
    expect(count(stdout, /requests served\s+\d+ \((\d+) succeeded\)/)).toBe(500)
    const tokenRequests = count(stdout, /^ {2}token requests\s+(\d+)$/m)
    expect(tokenRequests).toBeGreaterThanOrEqual(2) // the first token and the one after revocation
    expect(tokenRequests).toBeLessThanOrEqual(6)
    const retried = count(stdout, /401s swallowed and retried\s+(\d+)/)
    expect(retried).toBeGreaterThan(0)
    expect(retried).toBeLessThanOrEqual(500)
    expect(count(stdout, /readers API requests\s+(\d+)/)).toBe(500 + retried)
    expect(count(stdout, /none sent (\d+)/)).toBe(0)
    expect(count(stdout, /Authorization sent to status service\s+(\d+) of/)).toBe(0)
    expect(stdout).toContain('all checks passed')
  })
})

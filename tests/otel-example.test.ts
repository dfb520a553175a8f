import { execFile, execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Runs `node <args>` in the repository; its exit code and output. */
function node(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: root, timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null
      resolve({ code, stdout, stderr })
    })
  })
}

describe('undici-access-token/otel from the package (dist)', () => {
  beforeAll(() => {
    // Both import the package by its own name, which resolves to ./dist.
    if (!existsSync(new URL('../dist/otel/index.js', import.meta.url))) {
      execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
    }
  }, 60_000)

  it('examples/otel.js prints a live table and sees every metric move', {
    timeout: 25_000,
  }, async () => {
    const { code, stdout, stderr } = await node(['examples/otel.js'])
    expect(stderr).toBe('')
    expect(code, stdout).toBe(0)
    expect(stdout).toMatch(/time +requests +hits +misses +fetches +errors +retries +backoffs/)
    expect(stdout.match(/^ +\d+\.\ds +\d+/gm)?.length).toBeGreaterThanOrEqual(4) // rows, live
    expect(stdout).toMatch(/spans: \d+ undici_access_token\.fetch \(.*renewal 1/)
    expect(stdout).toContain('every metric moved')
  })

  it('instrument() with no SDK registered subscribes to no channel: requests pay nothing', async () => {
    const script = `
      import { channel, tracingChannel } from 'node:diagnostics_channel'
      import { channelNames } from 'undici-access-token'
      import { instrument } from 'undici-access-token/otel'
      instrument()
      const subscribed = channelNames.filter((name) => channel(name).hasSubscribers)
      console.log(JSON.stringify({ subscribed, tracing: tracingChannel('undici-access-token:fetch').hasSubscribers }))
    `
    const { code, stdout, stderr } = await node(['--input-type=module', '-e', script])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toEqual({ subscribed: [], tracing: false })
  })
})

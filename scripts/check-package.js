// Packs the package as npm would publish it and checks the tarball with
// publint and @arethetypeswrong/cli (ESM-only profile). Exits non-zero on a problem.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const dir = mkdtempSync(join(tmpdir(), 'uat-pack-'))
const run = (command, args) => execFileSync(command, args, { stdio: 'inherit' })
try {
  const output = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [{ filename, files }] = JSON.parse(output)
  console.log(`packed ${filename}: ${files.length} files`)
  const tarball = join(dir, filename)
  run('npx', ['--no-install', 'publint', 'run', tarball, '--strict'])
  run('npx', ['--no-install', 'attw', tarball, '--profile', 'esm-only'])
  console.log('package check passed')
} catch (error) {
  console.error(`package check failed: ${error.message}`)
  process.exitCode = 1
} finally {
  rmSync(dir, { recursive: true, force: true })
}

import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Every file's diagnostics events are scanned for the credentials its servers saw.
    setupFiles: ['tests/setup/secret-scan.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Files that set the global dispatcher or fake timers run in their own worker.
    pool: 'forks',
  },
})

// `npm run test:redis-cluster`: the Redis Cluster and Sentinel failover runs. Apart from
// `npm test` (tests/**/*.test.ts): they start 6 + 5 redis-servers and 9 Node processes per
// client and take minutes, not seconds. Files here are *.spec.ts so `npm test` skips them.
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['tests/redis-cluster/**/*.spec.ts'],
    // Every file's diagnostics events are scanned for the credentials its servers saw.
    setupFiles: ['tests/setup/secret-scan.ts'],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    pool: 'forks',
    // One topology at a time: two at once would share 2 cores and blur the figures.
    fileParallelism: false,
  },
})

// The fault suite (faults/scenarios.js, also `npm run faults`) against the built
// package: each scenario's bounds, and no secret in any error or event it produced.
import { describe, expect, test } from 'vitest'
import { scenarios } from '../faults/scenarios.js'

describe('fault suite', () => {
  test.each(scenarios.map((scenario) => [scenario.name, scenario] as const))(
    '%s',
    async (_, scenario) => {
      const row = await scenario.run()
      for (const [check, ok] of Object.entries(row.checks)) {
        expect.soft(ok, `${row.scenario}: ${check} (${row.notes})`).toBe(true)
      }
      expect(row.failedOther, 'every failure is a clear, typed error').toBe(0)
      expect(row.secretsSeen, 'secrets or tokens in errors or events').toBe(0)
    },
    20_000,
  )
})

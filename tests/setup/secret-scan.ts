// Runs in every test file (vitest setupFiles): records every diagnostics event
// the file's scenarios publish and, at the end, checks that none carries a
// token, client secret or Authorization value the test servers saw or issued.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { inspect } from 'node:util'
import { afterAll, expect } from 'vitest'
import { channelNames } from '../../lib/diagnostics.js'
import { registeredSecrets } from '../support/secret-registry.js'

const published: string[] = []
const listener = (message: unknown, name: string | symbol): void => {
  if (published.length < 50_000) published.push(`${String(name)} ${inspect(message, { depth: 6 })}`)
}
for (const name of channelNames) subscribe(name, listener)

afterAll(() => {
  for (const name of channelNames) unsubscribe(name, listener)
  const secrets = [...registeredSecrets()]
  const leaks = published.filter((line) => secrets.some((secret) => line.includes(secret)))
  // Say which channel leaked, never the secret itself.
  expect(
    leaks.map((line) => line.split(' ', 1)[0]),
    'diagnostics events carrying a secret',
  ).toEqual([])
})

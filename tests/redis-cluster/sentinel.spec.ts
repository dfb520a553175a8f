// Sentinel: a primary, a replica and 3 sentinels on loopback, made by this file. The
// failover scenarios (helpers/scenarios.ts) with ioredis (`sentinels`, `name`). Run by
// `npm run test:redis-cluster` (vitest.config.ts here).
import { afterAll, beforeAll } from 'vitest'
import { cli, type RedisSentinel, startSentinel, waitFor } from '../redis/helpers/redis-topology.js'
import { type FleetServers, printFigures, startFleetServers } from './helpers/fleet.js'
import { describeFailover } from './helpers/scenarios.js'

let sentinel: RedisSentinel
let servers: FleetServers

beforeAll(async () => {
  ;[sentinel, servers] = await Promise.all([startSentinel(), startFleetServers()])
}, 60_000)

afterAll(async () => {
  printFigures()
  await Promise.all([sentinel?.dispose(), servers?.close()])
})

describeFailover(
  'ioredis-sentinel',
  () => ({
    name: 'Sentinel',
    target: { sentinels: sentinel.sentinels.map((node) => node.port), name: sentinel.name },
    primaryFor: () => sentinel.primary(),
    waitForPromotion: (_prefix, former, timeoutMs) => sentinel.waitForPromotion(former, timeoutMs),
    kill: (port) => sentinel.node(port).kill(),
    async revive(port) {
      // It comes back as a primary with no data; the sentinels make it a replica.
      await sentinel.node(port).start()
      await sentinel.waitHealthy(30_000)
    },
    async failOverGracefully() {
      const [first] = sentinel.sentinels
      if (first === undefined) throw new Error('no sentinel')
      // https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/: a failover
      // as if the primary were unreachable, without asking the other sentinels.
      // Refused (NOGOODSLAVE, INPROG) until the revived replica is eligible: asked again.
      await waitFor('SENTINEL FAILOVER accepted', 20_000, async () =>
        (await cli(first.port, 'SENTINEL', 'FAILOVER', sentinel.name)) === 'OK' ? true : undefined,
      )
    },
    gracefulName: 'SENTINEL FAILOVER',
  }),
  () => servers,
)

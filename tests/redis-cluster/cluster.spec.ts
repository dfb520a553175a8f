// Redis Cluster: 3 primaries with a replica each, on loopback, made by this file.
// The failover scenarios (helpers/scenarios.ts) with node-redis createCluster() and
// ioredis Cluster. Run by `npm run test:redis-cluster` (vitest.config.ts here).
import { afterAll, beforeAll } from 'vitest'
import { clusterKinds } from '../redis/fixtures/clients.js'
import { redisKeyName } from '../redis/helpers/keys.js'
import { cli, type RedisCluster, startCluster } from '../redis/helpers/redis-topology.js'
import { type FleetServers, printFigures, startFleetServers } from './helpers/fleet.js'
import { describeFailover, type FailoverTopology } from './helpers/scenarios.js'

let cluster: RedisCluster
let servers: FleetServers

beforeAll(async () => {
  ;[cluster, servers] = await Promise.all([startCluster(3), startFleetServers()])
}, 60_000)

afterAll(async () => {
  printFigures()
  await Promise.all([cluster?.dispose(), servers?.close()])
})

/** The slot of the cache key 'default' under `prefix`: its token's and its lock's. */
async function slotOf(prefix: string): Promise<number> {
  const slot = await cluster.slotOf(redisKeyName(prefix, 'lock', 'default'))
  const tokenSlot = await cluster.slotOf(redisKeyName(prefix, 'token', 'default'))
  if (slot !== tokenSlot)
    throw new Error(`token and lock in different slots (${tokenSlot}, ${slot})`)
  return slot
}

const topology = (): FailoverTopology => ({
  name: 'Redis Cluster',
  target: { cluster: [...cluster.ports] },
  async primaryFor(prefix) {
    const shard = await cluster.shardOf(await slotOf(prefix))
    if (shard === undefined) throw new Error('no primary serves the slot')
    return shard.primary
  },
  async waitForPromotion(prefix, former, timeoutMs) {
    return cluster.waitForPromotion(await slotOf(prefix), former, timeoutMs)
  },
  kill: (port) => cluster.node(port).kill(),
  async revive(port) {
    // It comes back with its nodes.conf: the cluster makes it a replica of the new primary.
    await cluster.node(port).start()
    await cluster.waitHealthy(30_000)
  },
  async failOverGracefully(prefix) {
    const shard = await cluster.shardOf(await slotOf(prefix))
    if (shard?.replica === undefined) throw new Error('the slot has no replica to fail over to')
    // https://redis.io/docs/latest/commands/cluster-failover/: the replica takes over once
    // it has the primary's whole replication stream; no write is lost.
    const reply = await cli(shard.replica, 'CLUSTER', 'FAILOVER')
    if (reply !== 'OK') throw new Error(`CLUSTER FAILOVER: ${reply}`)
  },
  gracefulName: 'CLUSTER FAILOVER',
})

for (const kind of clusterKinds) describeFailover(kind, topology, () => servers)

// Redis topologies for the failover runs (tests/redis-cluster/): a Redis Cluster of
// primaries with a replica each, and a Sentinel-managed primary with a replica and three
// sentinels — every process a redis-server on 127.0.0.1, started here and killed by
// `dispose()` (and by redis-server.ts's exit hook should a run end without it).
import type { ChildProcess } from 'node:child_process'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { freePort, type SpawnOptions, spawnRedis, stopChild } from './redis-server.js'

const run = promisify(execFile)

/** One redis-server of a topology, on a fixed port: it can be killed and started again. */
export interface RedisNode {
  readonly port: number
  alive(): boolean
  /** `kill -9`: no shutdown, no goodbye to the cluster or the sentinels. */
  kill(): Promise<void>
  /** Starts it again on its port, with its directory (a cluster node keeps its nodes.conf). */
  start(): Promise<void>
  stop(): Promise<void>
}

/** `redis-cli -p <port> <args>` on 127.0.0.1; its output, trimmed. At most 5 s. */
export async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    timeout: 5_000,
  })
  return stdout.trim()
}

/** Polls `probe` every 100 ms until it returns a value, at most `timeoutMs`; that value. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(100)
  }
}

/** A redis-server on a free port (retried if the port was taken meanwhile). */
async function startNode(dir: string, options: (port: number) => SpawnOptions): Promise<RedisNode> {
  let port = 0
  let child: ChildProcess | undefined
  for (let attempt = 1; child === undefined; attempt++) {
    port = await freePort()
    try {
      child = await spawnRedis(port, dir, options(port))
    } catch (error) {
      if (attempt >= 3) throw error
    }
  }
  let current: ChildProcess | undefined = child
  const nodePort = port
  return {
    port: nodePort,
    alive: () => current !== undefined && current.exitCode === null && current.signalCode === null,
    async kill() {
      const killed = current
      current = undefined
      if (killed === undefined || killed.exitCode !== null || killed.signalCode !== null) return
      const exited = once(killed, 'exit')
      killed.kill('SIGKILL')
      await exited
    },
    async start() {
      if (current !== undefined) throw new Error(`redis-server ${nodePort} is running already`)
      current = await spawnRedis(nodePort, dir, options(nodePort))
    },
    async stop() {
      if (current !== undefined) await stopChild(current)
      current = undefined
    },
  }
}

/** `setup` once it is healthy within `timeoutMs`; if it is not, it is disposed of and the error thrown. */
async function healthy<
  T extends { waitHealthy(timeoutMs: number): Promise<void>; dispose(): Promise<void> },
>(setup: T, timeoutMs: number): Promise<T> {
  try {
    await setup.waitHealthy(timeoutMs)
  } catch (error) {
    await setup.dispose()
    throw error
  }
  return setup
}

// ---------------------------------------------------------------------------------------
// Redis Cluster

/** A slot's primary and its replica, as the cluster says now. */
export interface Shard {
  readonly primary: number
  readonly replica: number | undefined
}

export interface RedisCluster {
  readonly nodes: readonly RedisNode[]
  /** The ports of all nodes, for a client's seed list. */
  readonly ports: readonly number[]
  node(port: number): RedisNode
  /** `CLUSTER KEYSLOT key`. */
  slotOf(key: string): Promise<number>
  /** Who serves `slot` now, asked of a live node; undefined while no healthy primary does. */
  shardOf(slot: number): Promise<Shard | undefined>
  /** Waits until a primary other than `formerPrimary` serves `slot` and the cluster is ok. */
  waitForPromotion(slot: number, formerPrimary: number, timeoutMs: number): Promise<number>
  /** Waits until every slot is served and every primary has its replica in sync. */
  waitHealthy(timeoutMs: number): Promise<void>
  dispose(): Promise<void>
}

/** What `CLUSTER NODES` says of one node. */
interface ClusterNodeLine {
  id: string
  port: number
  flags: string[]
  primaryId: string
  slots: [number, number][]
  connected: boolean
}

function parseClusterNodes(text: string): ClusterNodeLine[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id = '', address = '', flags = '', primaryId = '', , , , link = '', ...slots] = line
        .trim()
        .split(' ')
      return {
        id,
        port: Number(/:(\d+)@/.exec(address)?.[1] ?? Number.NaN),
        flags: flags.split(','),
        primaryId,
        connected: link === 'connected',
        slots: slots
          .filter((range) => !range.startsWith('['))
          .map((range) => {
            const [from = '', to = from] = range.split('-')
            return [Number(from), Number(to)] as [number, number]
          }),
      }
    })
}

/**
 * A cluster of `primaries` primaries with one replica each, made with
 * `redis-cli --cluster create … --cluster-replicas 1`. `--cluster-node-timeout 1000`: a
 * primary that stops answering is failed over in 2–4 s.
 */
export async function startCluster(primaries = 3): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'uat-redis-cluster-'))
  const nodes: RedisNode[] = []
  const all = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < primaries * 2; i++) {
      nodes.push(
        await startNode(dir, (port) => ({
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-node-timeout',
            '1000',
          ],
        })),
      )
    }
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    )
  } catch (error) {
    await all()
    throw error
  }
  const live = (): RedisNode => {
    const node = nodes.find((candidate) => candidate.alive())
    if (node === undefined) throw new Error('no cluster node is running')
    return node
  }
  const cluster: RedisCluster = {
    nodes,
    ports: nodes.map((node) => node.port),
    node(port) {
      const node = nodes.find((candidate) => candidate.port === port)
      if (node === undefined) throw new Error(`no cluster node on port ${port}`)
      return node
    },
    async slotOf(key) {
      return Number(await cli(live().port, 'CLUSTER', 'KEYSLOT', key))
    },
    async shardOf(slot) {
      const lines = parseClusterNodes(await cli(live().port, 'CLUSTER', 'NODES'))
      const primary = lines.find(
        (line) =>
          line.flags.includes('master') &&
          !line.flags.includes('fail') &&
          !line.flags.includes('fail?') &&
          line.slots.some(([from, to]) => slot >= from && slot <= to),
      )
      if (primary === undefined) return undefined
      const replica = lines.find(
        (line) => line.flags.includes('slave') && line.primaryId === primary.id && line.connected,
      )
      return { primary: primary.port, replica: replica?.port }
    },
    async waitForPromotion(slot, formerPrimary, timeoutMs) {
      return waitFor(`a new primary for slot ${slot}`, timeoutMs, async () => {
        const shard = await cluster.shardOf(slot)
        if (shard === undefined || shard.primary === formerPrimary) return undefined
        const info = await cli(shard.primary, 'CLUSTER', 'INFO')
        return info.includes('cluster_state:ok') ? shard.primary : undefined
      })
    },
    async waitHealthy(timeoutMs) {
      await waitFor('a healthy cluster', timeoutMs, async () => {
        for (const node of nodes) {
          if (!node.alive()) return undefined
          if (!(await cli(node.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) {
            return undefined
          }
        }
        const lines = parseClusterNodes(await cli(live().port, 'CLUSTER', 'NODES'))
        const healthy = lines.filter((line) => line.flags.includes('master'))
        if (healthy.length !== primaries) return undefined
        for (const primary of healthy) {
          const info = await cli(primary.port, 'INFO', 'replication')
          // A replica that is online (synced), not one still loading the primary's data.
          if (!/slave0:.*state=online/.test(info)) return undefined
        }
        return true
      })
    },
    dispose: all,
  }
  return healthy(cluster, 20_000)
}

// ---------------------------------------------------------------------------------------
// Sentinel

export interface RedisSentinel {
  /** The name the sentinels monitor the primary under. */
  readonly name: string
  /** The primary and the replica, in the order they were started. */
  readonly servers: readonly RedisNode[]
  readonly sentinels: readonly RedisNode[]
  node(port: number): RedisNode
  /** The primary's port, as a sentinel tells it now. */
  primary(): Promise<number>
  /** Waits until every sentinel names a primary other than `former`, and it is one. */
  waitForPromotion(former: number, timeoutMs: number): Promise<number>
  /** Waits until the primary has its replica online and every sentinel knows them all. */
  waitHealthy(timeoutMs: number): Promise<void>
  dispose(): Promise<void>
}

/**
 * A primary, a replica and three sentinels (quorum 2), `down-after-milliseconds 1000`:
 * a primary that stops answering is failed over in about 2–3 s.
 */
export async function startSentinel(): Promise<RedisSentinel> {
  const name = 'uat-primary'
  const dir = mkdtempSync(join(tmpdir(), 'uat-redis-sentinel-'))
  const servers: RedisNode[] = []
  const sentinels: RedisNode[] = []
  const all = async (): Promise<void> => {
    await Promise.all([...sentinels, ...servers].map((node) => node.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    // Each server in its own directory: no shared dump or replication files.
    const serverDir = (): string => mkdtempSync(join(dir, 'server-'))
    const primary = await startNode(serverDir(), () => ({}))
    servers.push(primary)
    servers.push(
      await startNode(serverDir(), () => ({
        args: ['--replicaof', '127.0.0.1', String(primary.port)],
      })),
    )
    for (let i = 0; i < 3; i++) {
      sentinels.push(
        await startNode(dir, (port) => {
          // A Sentinel rewrites its config file (what it learns): one file each.
          const config = join(dir, `sentinel-${port}.conf`)
          writeFileSync(
            config,
            [
              `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
              `sentinel down-after-milliseconds ${name} 1000`,
              // Also how soon a sentinel may fail over the same primary again (twice this).
              `sentinel failover-timeout ${name} 2000`,
              `sentinel parallel-syncs ${name} 1`,
              '',
            ].join('\n'),
            { flag: 'wx' },
          )
          return { config, args: ['--sentinel'], readyLine: '+monitor master' }
        }),
      )
    }
  } catch (error) {
    await all()
    throw error
  }
  const byPort = (port: number): RedisNode => {
    const node = [...servers, ...sentinels].find((candidate) => candidate.port === port)
    if (node === undefined) throw new Error(`no server on port ${port}`)
    return node
  }
  const primaryAsKnownBy = async (sentinel: RedisNode): Promise<number> => {
    const reply = await cli(sentinel.port, 'SENTINEL', 'get-master-addr-by-name', name)
    return Number(reply.split('\n')[1])
  }
  const setup: RedisSentinel = {
    name,
    servers,
    sentinels,
    node: byPort,
    async primary() {
      const sentinel = sentinels.find((candidate) => candidate.alive())
      if (sentinel === undefined) throw new Error('no sentinel is running')
      return primaryAsKnownBy(sentinel)
    },
    async waitForPromotion(former, timeoutMs) {
      return waitFor('a promoted replica', timeoutMs, async () => {
        const named = await Promise.all(sentinels.map(primaryAsKnownBy))
        const [port] = named
        if (port === undefined || port === former || named.some((other) => other !== port)) {
          return undefined
        }
        return (await cli(port, 'ROLE')).startsWith('master') ? port : undefined
      })
    },
    async waitHealthy(timeoutMs) {
      await waitFor('a healthy Sentinel setup', timeoutMs, async () => {
        if (![...servers, ...sentinels].every((node) => node.alive())) return undefined
        const primary = await setup.primary()
        const info = await cli(primary, 'INFO', 'replication')
        if (!/slave0:.*state=online/.test(info)) return undefined
        for (const sentinel of sentinels) {
          if ((await primaryAsKnownBy(sentinel)) !== primary) return undefined
          // Each sentinel must know the other two (a failover needs a majority of them)…
          const others = await cli(sentinel.port, 'SENTINEL', 'SENTINELS', name)
          if ((others.match(/^runid$/gm) ?? []).length !== 2) return undefined
          // …and the replica, online.
          const replicas = await cli(sentinel.port, 'SENTINEL', 'REPLICAS', name)
          if (!/^flags\nslave$/m.test(replicas)) return undefined
        }
        return true
      })
    },
    dispose: all,
  }
  return healthy(setup, 30_000)
}

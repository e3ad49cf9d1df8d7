import { type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { NatAddress } from '../../shared/adapters/redis/connection.js'
import { freePort } from './free-port.js'
import { cli, launchClusterNode, type RedisCluster, type RedisClusterNode, until } from './redis-cluster.js'
import type { Teardown } from './redis-server.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'

/**
 * One replica per master of a {@link RedisCluster}, the replica of master `relayed` reaching
 * it through a relay the test can stall.
 *
 * How the relay sits on the replication link only: a Redis Cluster replica connects to the
 * address its master announces on the cluster bus, and so do clients (CLUSTER SLOTS, MOVED).
 * The relayed master announces the relay's port (`cluster-announce-port`), so its replica
 * replicates through the relay; clients are given a NAT map (`REDIS_CLUSTER_NAT_MAP`, ioredis
 * `natMap`) from that announced address to the master's own port, so their commands go
 * straight to it. A stalled relay then holds back exactly the replication stream, and the
 * replica keeps everything it received (its link stays up until `repl-timeout`).
 */
export interface ClusterReplicas {
  /** `nodes[i]` replicates `cluster.nodes[i]` (until a failover promotes it). */
  nodes: RedisClusterNode[]
  /** The index of the master whose replication link runs through {@link ClusterReplicas.relay}. */
  relayed: number
  relay: TcpProxy
  /** Announced address → reachable address, as ioredis `natMap` takes it. */
  natMap: Record<string, NatAddress>
  /** The same as `REDIS_CLUSTER_NAT_MAP` reads it. */
  natMapSetting: string
  /** `master_repl_offset` of master `index` and `slave_repl_offset` of its replica. */
  offsets (index: number): Promise<{ master: number, replica: number }>
  /**
   * `CLUSTER FAILOVER FORCE` on replica `index` (no handshake with its master: it is taken
   * as it is), then waits until every node still running routes the master's slots to it
   * and reports `cluster_state:ok`.
   */
  forceFailover (index: number): Promise<void>
  /** Process ids of the running replicas. */
  pids (): number[]
}

async function exited (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await once(child, 'exit')
}

async function infoField (port: number, section: string, field: string): Promise<string | undefined> {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(await cli(port, 'info', section))?.[1]?.trim()
}

/** The node id (40 hex digits) of the node on `port`. */
async function nodeId (port: number): Promise<string> {
  return (await cli(port, 'cluster', 'myid')).trim()
}

/** `CLUSTER NODES` of the node on `port`, one entry per node: id, announced port, flags, master id. */
async function clusterNodes (port: number): Promise<Array<{ id: string, port: number, flags: string[], master: string }>> {
  return (await cli(port, 'cluster', 'nodes')).trim().split('\n').map((line) => {
    const [id = '', address = '', flags = '', master = ''] = line.split(' ')
    return { id, port: Number(/:(\d+)@/.exec(address)?.[1]), flags: flags.split(','), master }
  })
}

/**
 * Starts one replica for every master of `cluster` and joins it (`CLUSTER MEET`, then
 * `CLUSTER REPLICATE`), the replica of master `relayed` through a relay (see
 * {@link ClusterReplicas}); waits until every replica is in sync and every node knows it.
 * Call before giving clients the cluster: the relayed master's announced port changes.
 */
export async function addClusterReplicas (t: Teardown, cluster: RedisCluster, options: { relayed: number }): Promise<ClusterReplicas> {
  const master = cluster.nodes[options.relayed]
  if (master === undefined) throw new Error(`no master ${options.relayed}`)
  const children = new Map<number, ChildProcess>()
  const nodes: RedisClusterNode[] = []
  t.teardown(async () => await Promise.all([...children.values()].map(async (child) => {
    child.kill('SIGTERM')
    await exited(child)
  })))
  const relay = await startTcpProxy(t, { host: '127.0.0.1', port: master.port })
  await cli(master.port, 'config', 'set', 'cluster-announce-port', String(relay.port))
  const masterIds = await Promise.all(cluster.nodes.map(async (n) => await nodeId(n.port)))
  const everyNode = (): number[] => [...cluster.nodes, ...nodes].map((n) => n.port)
  await until(async () => (await Promise.all(everyNode().map(async (port) => (await clusterNodes(port)).some((n) => n.id === masterIds[options.relayed] && n.port === relay.port)))).every(Boolean), 'every node knows the relayed master by the relay\'s port')

  for (const [index, of] of cluster.nodes.entries()) {
    const port = await freePort()
    children.set(port, await launchClusterNode(cluster.dir, port, await freePort()))
    nodes.push({ port, url: `redis://127.0.0.1:${port}` })
    await cli(port, 'cluster', 'meet', '127.0.0.1', String(of.port), String(cluster.busPortOf(of.port)))
    const ofId = masterIds[index] as string
    await until(async () => (await clusterNodes(port)).some((n) => n.id === ofId && n.flags.includes('master') && !n.flags.includes('handshake')), `replica ${port} meets master ${of.port}`)
    await cli(port, 'cluster', 'replicate', ofId)
    // Only the test promotes a replica (CLUSTER FAILOVER FORCE still works): on a loaded
    // machine a master can miss the node timeout, and a replica that promoted itself in
    // the middle of a phase would test another failover than the one the test stages.
    await cli(port, 'config', 'set', 'cluster-replica-no-failover', 'yes')
  }
  for (const [index, replica] of nodes.entries()) {
    await until(async () => await infoField(replica.port, 'replication', 'master_link_status') === 'up', `replica ${replica.port} in sync`)
    const id = await nodeId(replica.port)
    await until(async () => (await Promise.all(everyNode().map(async (port) => (await clusterNodes(port)).some((n) => n.id === id && n.flags.includes('slave') && n.master === masterIds[index])))).every(Boolean), `every node knows replica ${replica.port}`)
  }
  await until(async () => (await Promise.all(everyNode().map(async (port) => (await cli(port, 'cluster', 'info')).includes('cluster_state:ok')))).every(Boolean), 'cluster_state:ok on every node')

  const announced = `127.0.0.1:${relay.port}`
  return {
    nodes,
    relayed: options.relayed,
    relay,
    natMap: { [announced]: { host: '127.0.0.1', port: master.port } },
    natMapSetting: `${announced}=127.0.0.1:${master.port}`,
    async offsets (index) {
      const [of, replica] = [cluster.nodes[index], nodes[index]]
      if (of === undefined || replica === undefined) throw new Error(`no master ${index}`)
      return {
        master: Number(await infoField(of.port, 'replication', 'master_repl_offset')),
        replica: Number(await infoField(replica.port, 'replication', 'slave_repl_offset'))
      }
    },
    async forceFailover (index) {
      const replica = nodes[index]
      if (replica === undefined) throw new Error(`no replica ${index}`)
      const id = await nodeId(replica.port)
      await cli(replica.port, 'cluster', 'failover', 'force')
      const running = (): number[] => everyNode().filter((port) => port !== cluster.nodes[index]?.port)
      await until(async () => await infoField(replica.port, 'replication', 'role') === 'master', `replica ${replica.port} promoted`)
      const alive = async (port: number): Promise<boolean> => await cli(port, 'ping').then((r) => r.trim() === 'PONG', () => false)
      await until(async () => {
        const ports = (await Promise.all(running().map(async (port) => await alive(port) ? [port] : []))).flat()
        const views = await Promise.all(ports.map(async (port) => ({ nodes: await clusterNodes(port), ok: (await cli(port, 'cluster', 'info')).includes('cluster_state:ok') })))
        return views.every((view) => view.ok && view.nodes.some((n) => n.id === id && n.flags.includes('master')))
      }, `every running node routes to the promoted replica ${replica.port}`)
    },
    pids () {
      return [...children.values()].flatMap((child) => child.pid === undefined || child.exitCode !== null ? [] : [child.pid])
    }
  }
}

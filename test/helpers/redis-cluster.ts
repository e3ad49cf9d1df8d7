import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { freePort } from './free-port.js'
import type { Teardown } from './redis-server.js'

const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server'
const REDIS_CLI = process.env.REDIS_CLI_BIN ?? '/usr/bin/redis-cli'
const run = promisify(execFile)

/** One master of a {@link RedisCluster}. */
export interface RedisClusterNode {
  port: number
  url: string
}

/**
 * A real Redis Cluster of masters on free loopback ports, each with an append-only file, so
 * a master that is stopped and started again comes back with its data and its slots.
 * Replicas are added by `addClusterReplicas` (redis-cluster-replicas.ts).
 */
export interface RedisCluster {
  /** A seed node's URL, as `REDIS_URL` with `REDIS_CLUSTER=1`. */
  url: string
  nodes: RedisClusterNode[]
  /** Stops master `index` (SIGTERM, or SIGKILL with `kill`), waits `downMs`, starts it again and waits for `cluster_state:ok`. */
  restartMaster (index: number, options?: { downMs?: number, kill?: boolean }): Promise<void>
  /** Stops master `index` for good (SIGTERM, or SIGKILL with `kill`), as a lost machine. */
  stopMaster (index: number, options?: { kill?: boolean }): Promise<void>
  /** The cluster bus port of the node on `port`. */
  busPortOf (port: number): number
  /** The directory the nodes keep their files in (nodes added later may share it). */
  readonly dir: string
  /** Process ids of the running redis-servers (to sample their CPU). */
  pids (): number[]
  /** The node that serves `key`'s slot. */
  nodeOf (key: string): Promise<RedisClusterNode>
  /** Shuts every node down and removes the data directory. Safe to call twice. */
  stop (): Promise<void>
}

async function exited (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await once(child, 'exit')
}

/** Runs `redis-cli` against the node on `port` and returns what it printed. */
export async function cli (port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 })
  return stdout
}

/** Polls `check` every 100 ms until it answers true; throws after `ms`. */
export async function until (check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(100)
  }
  throw new Error(`${what} within ${ms} ms`)
}

/**
 * Starts one `redis-server --cluster-enabled yes` on `port` (cluster bus on `busPort`),
 * keeping its files in `dir`, and waits until it answers PING.
 */
export async function launchClusterNode (dir: string, port: number, busPort: number): Promise<ChildProcess> {
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
    // Redis ≥ 7 takes the bus port explicitly, so it is a free one rather than port + 10000.
    '--cluster-port', String(busPort), '--cluster-node-timeout', '5000',
    '--appendonly', 'yes', '--appenddirname', `aof-${port}`, '--appendfsync', 'always', '--save', '',
    // A replica added later starts its first sync at once rather than waiting for others.
    '--repl-diskless-sync-delay', '0',
    '--loglevel', 'warning', '--enable-debug-command', 'local'
  ]
  const child = spawn(REDIS_SERVER, args, { stdio: 'ignore' })
  const deadline = Date.now() + 20_000
  for (;;) {
    // Exited: its port was taken (the caller may start it on another).
    if (child.exitCode !== null) throw new Error(`redis-server ${port} exited with ${child.exitCode}`)
    if (await cli(port, 'ping').then((reply) => reply.trim() === 'PONG', () => false)) return child
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`redis-server ${port} answers PING within 20000 ms`)
    }
    await sleep(100)
  }
}

/**
 * Starts `masters` (default 3) `redis-server --cluster-enabled yes` processes, joins them
 * with `redis-cli --cluster create`, waits until every node reports `cluster_state:ok`, and
 * registers the teardown with `t` at once.
 */
export async function startRedisCluster (t: Teardown, options: { masters?: number } = {}): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-redis-cluster-'))
  const count = options.masters ?? 3
  const children = new Map<number, ChildProcess>()
  const nodes: RedisClusterNode[] = []
  const busPorts = new Map<number, number>()
  let stopped = false

  const launch = async (port: number): Promise<void> => {
    children.set(port, await launchClusterNode(dir, port, busPorts.get(port) as number))
  }

  const clusterOk = async (port: number): Promise<boolean> => (await cli(port, 'cluster', 'info')).includes('cluster_state:ok')
  const allOk = async (): Promise<void> => {
    await until(async () => (await Promise.all(nodes.map(async (n) => await clusterOk(n.port)))).every(Boolean), 'cluster_state:ok on every node')
  }

  const cluster: RedisCluster = {
    get url () { return (nodes[0] as RedisClusterNode).url },
    nodes,
    dir,
    async restartMaster (index, restartOptions = {}) {
      await cluster.stopMaster(index, restartOptions)
      const node = nodes[index] as RedisClusterNode
      await sleep(restartOptions.downMs ?? 0)
      await launch(node.port)
      await allOk()
    },
    async stopMaster (index, stopOptions = {}) {
      const node = nodes[index]
      if (node === undefined) throw new Error(`no master ${index}`)
      const child = children.get(node.port)
      if (child !== undefined) {
        child.kill(stopOptions.kill === true ? 'SIGKILL' : 'SIGTERM')
        await exited(child)
      }
    },
    busPortOf (port) {
      const bus = busPorts.get(port)
      if (bus === undefined) throw new Error(`no node on ${port}`)
      return bus
    },
    pids () {
      return [...children.values()].flatMap((child) => child.pid === undefined || child.exitCode !== null ? [] : [child.pid])
    },
    async nodeOf (key) {
      const slot = Number((await cli(nodes[0]?.port ?? 0, 'cluster', 'keyslot', key)).trim())
      const slots = await slotRanges((nodes[0] as RedisClusterNode).port)
      const owner = slots.find(([from, to]) => slot >= from && slot <= to)
      const node = nodes.find((n) => n.port === owner?.[2])
      if (node === undefined) throw new Error(`no node serves slot ${slot}`)
      return node
    },
    async stop () {
      if (stopped) return
      stopped = true
      await Promise.all([...children.values()].map(async (child) => {
        child.kill('SIGTERM')
        await exited(child)
      }))
      await rm(dir, { recursive: true, force: true })
    }
  }
  t.teardown(() => cluster.stop())

  for (let i = 0; i < count; i++) nodes.push({ port: 0, url: '' })
  // A port freePort found free can be taken (by a test's outgoing connection) before
  // redis-server binds it, and the server exits: such a node starts again on new ports.
  await Promise.all(nodes.map(async (node) => {
    for (let attempt = 1; ; attempt++) {
      node.port = await freePort()
      node.url = `redis://127.0.0.1:${node.port}`
      busPorts.set(node.port, await freePort())
      try {
        await launch(node.port)
        return
      } catch (error) {
        if (attempt === 3) throw error
      }
    }
  }))
  await run(REDIS_CLI, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 60_000 })
  await allOk()
  return cluster
}

/** `[firstSlot, lastSlot, port]` of each slot range, from `CLUSTER SLOTS`. */
async function slotRanges (port: number): Promise<Array<[number, number, number]>> {
  const text = await cli(port, '--json', 'cluster', 'slots')
  const parsed = JSON.parse(text) as Array<[number, number, [string, number, string]]>
  return parsed.map(([from, to, master]) => [from, to, master[1]])
}

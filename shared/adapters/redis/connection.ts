import { lookup } from 'node:dns'
import { type ChainableCommander, Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis'

/** A connection to a single Redis node or to a Redis Cluster; adapters use either alike. */
export type RedisClient = Redis | Cluster

/** How this process reaches an address a cluster node announces. */
export interface NatAddress {
  host: string
  port: number
}

/** `REDIS_CLUSTER=1`: the URL names one seed node of a Redis Cluster. */
export interface RedisClusterOptions {
  /**
   * Announced `host:port` of a node → the address to use instead (`REDIS_CLUSTER_NAT_MAP`),
   * for nodes behind NAT or port mapping (Docker, some managed services).
   */
  natMap?: Record<string, NatAddress>
}

/** Where Pulse's Redis is: a single node, or a seed node of a cluster. */
export interface RedisTarget {
  /** `redis://` or `rediss://` URL of the node (credentials, TLS) */
  url: string
  /** Set: `url` is a seed node of a Redis Cluster, and every node takes the same credentials. */
  cluster?: RedisClusterOptions | undefined
}

/** Connection settings one adapter needs, applied to every node of a cluster. */
export interface ConnectionTuning {
  /** Hold commands while disconnected (default) or fail them at once. */
  enableOfflineQueue?: boolean
  /** `null`: retry forever (BullMQ's blocking reads need it). */
  maxRetriesPerRequest?: number | null
  connectTimeout?: number
  /**
   * Fail a command with no reply after this many ms rather than wait for ever (a reply lost
   * with a node that died in a failover). Never on a connection that runs blocking commands
   * (BullMQ's), which wait for their reply on purpose.
   */
  commandTimeout?: number
  /** Cluster only: one subscriber connection per master for SSUBSCRIBE (sharded pub/sub). */
  shardedSubscribers?: boolean
}

/** Runs a pipeline and returns its results, throwing the first command error. */
export async function execPipeline (pipeline: ChainableCommander): Promise<unknown[]> {
  const results = await pipeline.exec()
  if (results === null) throw new Error('pipeline was discarded')
  return results.map(([error, value]) => {
    if (error !== null) throw error
    return value
  })
}

/** Quits politely when connected; otherwise stops reconnecting at once. */
export async function closeConnection (redis: RedisClient): Promise<void> {
  if (redis.status === 'end') return
  if (redis.status !== 'ready') {
    redis.disconnect()
    return
  }
  await redis.quit().catch(() => redis.disconnect())
}

/** Connection options of a `redis://` or `rediss://` URL, for clients that own their connections (BullMQ). */
export function redisOptionsFromUrl (url: string): RedisOptions {
  const parsed = new URL(url)
  const options: RedisOptions = { host: parsed.hostname, port: Number(parsed.port || 6379) }
  if (parsed.username !== '') options.username = decodeURIComponent(parsed.username)
  if (parsed.password !== '') options.password = decodeURIComponent(parsed.password)
  const db = parsed.pathname.replace(/^\//, '')
  if (db !== '') options.db = Number(db)
  if (parsed.protocol === 'rediss:') options.tls = {}
  return options
}

/**
 * A Redis Cluster client whose pipelines may span slots. ioredis sends a pipeline to one
 * node and refuses one whose keys live on several, but Pulse pipelines commands of many
 * tickers, each ticker on its own slot. Here a pipeline queues its commands and `exec`
 * sends each to the node that serves its slot, all at once (ioredis writes them without
 * waiting for replies, and follows MOVED/ASK per command), then answers in order as a
 * pipeline does. Like any pipeline it is not a transaction: atomicity lives in the Lua
 * scripts, whose keys share one ticker's hash tag.
 */
export class SlotRoutedCluster extends Cluster {
  override pipeline (commands: unknown[][] = []): ChainableCommander {
    const queued: Array<{ name: string, args: unknown[] }> = commands.map(([name, ...args]) => ({ name: String(name), args }))
    const methods = this as unknown as Record<string, unknown>
    const send = async ({ name, args }: { name: string, args: unknown[] }): Promise<unknown> =>
      await (methods[name] as (...a: unknown[]) => Promise<unknown>).apply(this, args)
    const exec = async (): Promise<Array<[Error | null, unknown]>> => {
      const settled = await Promise.allSettled(queued.map(send))
      return settled.map((s) => s.status === 'fulfilled' ? [null, s.value] : [s.reason instanceof Error ? s.reason : new Error(String(s.reason)), null])
    }
    const pipeline: ChainableCommander = new Proxy({} as ChainableCommander, {
      get (_target, property) {
        if (property === 'exec') return exec
        if (property === 'length') return queued.length
        if (typeof property !== 'string' || typeof methods[property] !== 'function') return undefined
        return (...args: unknown[]) => {
          queued.push({ name: property, args })
          return pipeline
        }
      }
    })
    return pipeline
  }
}

/** How often a cluster client reads the slot map again without being prompted. */
const SLOTS_REFRESH_MS = 5000

/**
 * Reads the slot map again whenever a node cannot be reached. A node connection that keeps
 * reconnecting (`clusterNodeRetryStrategy`) never ends, so ioredis neither drops it nor
 * looks for a new owner of its slots: after a failover (`CLUSTER FAILOVER FORCE`, or a
 * replica promoted when its master died), commands for those slots would wait on the lost
 * master until their retries ran out, again and again. A fresh slot map (from any node that
 * answers) routes them to the promoted replica, and the lost master, owning no slot any
 * more, is dropped from the pool, which sends the commands queued on it to the new owner.
 * A master that only restarts keeps its slots and is simply reconnected.
 */
function followFailovers<C extends Cluster> (cluster: C): C {
  cluster.on('node error', () => { cluster.refreshSlotsCache() })
  return cluster
}

function nodeOptions (url: string, tuning: ConnectionTuning): RedisOptions {
  const options = redisOptionsFromUrl(url)
  if (options.db !== undefined && options.db !== 0) throw new Error('a Redis Cluster has no numbered databases: drop the path from REDIS_URL')
  const node: RedisOptions = {}
  if (options.username !== undefined) node.username = options.username
  if (options.password !== undefined) node.password = options.password
  if (options.tls !== undefined) node.tls = options.tls
  if (tuning.maxRetriesPerRequest !== undefined) node.maxRetriesPerRequest = tuning.maxRetriesPerRequest
  if (tuning.connectTimeout !== undefined) node.connectTimeout = tuning.connectTimeout
  if (tuning.commandTimeout !== undefined) node.commandTimeout = tuning.commandTimeout
  return node
}

function clusterOptions (target: RedisTarget & { cluster: RedisClusterOptions }, tuning: ConnectionTuning): { seed: { host: string, port: number }, options: ClusterOptions } {
  const { host, port } = redisOptionsFromUrl(target.url)
  const tls = target.url.startsWith('rediss:')
  const options: ClusterOptions = {
    redisOptions: nodeOptions(target.url, tuning),
    enableOfflineQueue: tuning.enableOfflineQueue ?? true,
    shardedSubscribers: tuning.shardedSubscribers ?? false,
    // With TLS the node names must stay hostnames, or certificate checks fail on bare IPs
    // (ElastiCache and MemoryDB with in-transit encryption).
    dnsLookup: tls ? (address, callback) => callback(null, address) : lookup,
    // A node that comes back (a restarted master) is reconnected rather than only found again through MOVED.
    clusterNodeRetryStrategy: (times) => Math.min(100 * times, 2000),
    // The slot map is read again now and then (ioredis does not unless told), so a topology
    // change no command ran into yet is still learnt (see followFailovers for the quick path).
    slotsRefreshInterval: SLOTS_REFRESH_MS
  }
  if (target.cluster.natMap !== undefined) options.natMap = target.cluster.natMap
  return { seed: { host: host ?? '127.0.0.1', port: port ?? 6379 }, options }
}

/**
 * Opens a connection to `target`: a `Redis` for a single node, a {@link SlotRoutedCluster}
 * for a cluster. The caller owns it (see {@link closeConnection}).
 */
export function openRedis (target: RedisTarget, tuning: ConnectionTuning = {}): RedisClient {
  if (target.cluster === undefined) {
    const { shardedSubscribers: _, ...options } = tuning
    return new Redis(target.url, options)
  }
  const { seed, options } = clusterOptions({ ...target, cluster: target.cluster }, tuning)
  return followFailovers(new SlotRoutedCluster([seed], options))
}

/**
 * The `connection` to give BullMQ: plain options for a single node (BullMQ opens and closes
 * its own connections), or a plain ioredis `Cluster`, which BullMQ shares and the caller
 * must close after the queue or worker that uses it.
 */
export function bullmqConnection (target: RedisTarget, tuning: ConnectionTuning = {}): RedisOptions | Cluster {
  if (target.cluster === undefined) {
    const options = redisOptionsFromUrl(target.url)
    if (tuning.maxRetriesPerRequest !== undefined) options.maxRetriesPerRequest = tuning.maxRetriesPerRequest
    return options
  }
  const { seed, options } = clusterOptions({ ...target, cluster: target.cluster }, tuning)
  return followFailovers(new Cluster([seed], options))
}

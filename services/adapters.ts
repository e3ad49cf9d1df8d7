import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from '../shared/config/config.js'
import type { Archive } from '../shared/ports/archive.js'
import type { Bus } from '../shared/ports/bus.js'
import type { HotState } from '../shared/ports/hot-state.js'
import type { IngestQueue } from '../shared/ports/ingest-queue.js'
import type { TickerRegistry } from '../shared/ports/ticker-registry.js'

/*
 * The choice of adapters behind the ports, once per process; each mode loads its adapter
 * modules when it is chosen.
 */

/** The adapters of one mode, behind the ports every role uses. */
export interface PulseAdapters {
  mode: 'embedded' | 'cluster'
  queue: IngestQueue
  hot: HotState
  bus: Bus
  archive: Archive
  /** The tickers served, changed at run time through the admin API. */
  tickers: TickerRegistry
  /** Called after write-behind flushes (the embedded journal checkpoints here). */
  afterFlush?: () => Promise<void>
  /** Runs `fn` every `everyMs` once across the cluster; unset: each process runs its own timer. */
  scheduleRepeatable?: (name: string, everyMs: number, fn: () => Promise<void>) => Promise<{ close: () => Promise<void> }>
  close: () => Promise<void>
}

/** Embedded adapters when `REDIS_URL` is unset, cluster adapters when it is set. */
export async function createAdapters (config: Config, log: Logger): Promise<PulseAdapters> {
  return config.redisUrl === undefined ? await createEmbeddedAdapters(config, log) : await createClusterAdapters(config.redisUrl, config, log)
}

/** Settings of the embedded journal that have no configuration variable (tests and benchmarks set them). */
export interface EmbeddedTuning {
  journal?: { segmentMs?: number, segmentBytes?: number }
  /** Least time between two journal checkpoints. */
  checkpointEveryMs?: number
}

/**
 * Embedded mode: a journal on disk as the queue, hot state and bus in memory, and the
 * archive on DynamoDB — dynalite under `DATA_DIR`, with the archive client, in a thread of
 * its own, unless `DYNAMODB_ENDPOINT` names another endpoint.
 */
export async function createEmbeddedAdapters (config: Config, log: Logger, tuning: EmbeddedTuning = {}): Promise<PulseAdapters> {
  const [{ DynamoArchive }, { EmbeddedArchive }, { tableName }, { JournalCheckpointer }, { DedupeStore }, { JournalQueue }, { MemoryBus }, { MemoryHotState }, { FileTickerRegistry }] = await Promise.all([
    import('../shared/adapters/dynamo/dynamo-archive.js'),
    import('../shared/adapters/dynamo/embedded-dynamo.js'),
    import('../shared/adapters/dynamo/table.js'),
    import('../shared/adapters/journal/checkpointer.js'),
    import('../shared/adapters/journal/dedupe-store.js'),
    import('../shared/adapters/journal/journal-queue.js'),
    import('../shared/adapters/memory/memory-bus.js'),
    import('../shared/adapters/memory/memory-hot-state.js'),
    import('../shared/adapters/journal/file-ticker-registry.js')
  ])
  const tickers = await FileTickerRegistry.open({ dir: config.dataDir, seed: config.tickers, now: Date.now() })
  const table = tableName(config.env)
  const archive = config.dynamodbEndpoint === undefined
    ? await EmbeddedArchive.start({ dir: join(config.dataDir, 'dynalite'), tableName: table, region: config.awsRegion, retentionScale: config.retentionScale })
    : await DynamoArchive.open({ region: config.awsRegion, endpoint: config.dynamodbEndpoint, tableName: table })
  const bus = new MemoryBus()
  // Folds publish their changes on the bus themselves, in fold order.
  const hot = new MemoryHotState({ dedupeWindowMs: config.dedupeWindowMs, bus })
  // Dedupe as of the journal's checkpoint first; the journal's replay adds what came after.
  const dedupe = await DedupeStore.open({ dir: join(config.dataDir, 'dedupe'), windowMs: config.dedupeWindowMs })
  await dedupe.load(Date.now(), (slice, fingerprints) => hot.restoreSeen(slice, fingerprints))
  const queue = await JournalQueue.open({
    ...tuning.journal,
    dir: join(config.dataDir, 'journal'),
    onError: (err, batch) => log.warn({ err, batch: batch.id }, 'fold failed; retrying')
  })
  const checkpointer = new JournalCheckpointer({
    queue,
    hot,
    dedupe,
    syncArchive: archive instanceof EmbeddedArchive ? async () => await archive.syncStore() : undefined,
    ...(tuning.checkpointEveryMs === undefined ? {} : { everyMs: tuning.checkpointEveryMs })
  })
  const sweeper = setInterval(() => hot.sweep(Date.now()), 60_000)
  sweeper.unref()
  return {
    mode: 'embedded',
    queue,
    hot,
    bus,
    archive,
    tickers,
    afterFlush: async () => {
      // A flush that left nothing dirty (idle, or the last one on shutdown) checkpoints at once.
      await checkpointer.run(await hot.dirtyCount() === 0)
    },
    close: async () => {
      clearInterval(sweeper)
      await queue.close()
      await bus.close()
      await archive.close()
      await tickers.close()
    }
  }
}

/**
 * Cluster mode: Redis hot state (atomic Lua fold), Redis pub/sub, BullMQ ingest queue
 * (`INGEST_SHARDS` queues), and the DynamoDB archive. Redis is one node, or with
 * `REDIS_CLUSTER=1` a Redis Cluster (sharded pub/sub). With `DYNAMODB_ENDPOINT` set (dynalite, DynamoDB Local) a missing
 * table is created; on real DynamoDB the table comes from `npm run table:create`.
 */
async function createClusterAdapters (redisUrl: string, config: Config, log: Logger): Promise<PulseAdapters> {
  const [{ DynamoArchive }, { tableName }, { createRedisAdapters }, { refuseEvictingRedis }, { RedisTickerRegistry }] = await Promise.all([
    import('../shared/adapters/dynamo/dynamo-archive.js'),
    import('../shared/adapters/dynamo/table.js'),
    import('../shared/adapters/redis/index.js'),
    import('../shared/adapters/redis/eviction-policy.js'),
    import('../shared/adapters/redis/redis-ticker-registry.js')
  ])
  if (config.redisEvictionCheck) await refuseEvictingRedis({ url: redisUrl, cluster: config.redisCluster })
  const archive = await DynamoArchive.open({ region: config.awsRegion, endpoint: config.dynamodbEndpoint, tableName: tableName(config.env) })
  const redis = createRedisAdapters({
    redisUrl,
    cluster: config.redisCluster,
    ingestShards: config.ingestShards,
    flushLeaseMs: config.flushLeaseMs,
    env: config.env,
    dedupeWindowMs: config.dedupeWindowMs,
    queueLockMs: config.queueLockMs,
    durability: config.ingestDurability,
    replicaTimeoutMs: config.ingestReplicaTimeoutMs,
    onError: (err) => log.warn({ err }, 'redis')
  })
  const tickers = await RedisTickerRegistry.open({
    url: redisUrl,
    cluster: config.redisCluster,
    env: config.env,
    seed: config.tickers,
    now: Date.now(),
    pollMs: config.tickerRegistryPollMs,
    onError: (err) => log.warn({ err }, 'ticker registry')
  })
  if (config.role !== 'worker') {
    const warning = await redis.queue.checkDurability().catch((err: unknown) => `INGEST_DURABILITY: ${(err as Error).message}`)
    if (warning !== undefined) log.warn(warning)
  }
  return {
    mode: 'cluster',
    queue: redis.queue,
    hot: redis.hot,
    bus: redis.bus,
    archive,
    tickers,
    scheduleRepeatable: async (name, everyMs, fn) => await redis.scheduleRepeatable(name, everyMs, async () => { await fn() }),
    close: async () => {
      await redis.close()
      await tickers.close()
      await archive.close()
    }
  }
}

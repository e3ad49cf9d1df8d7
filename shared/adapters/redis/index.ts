import { BullmqIngestQueue, type IngestDurability } from './bullmq-queue.js'
import type { RedisClusterOptions } from './connection.js'
import { RedisBus } from './redis-bus.js'
import { RedisHotState } from './redis-hot-state.js'
import { type RepeatableJob, type RepeatableRun, scheduleRepeatable } from './repeatable-job.js'

export { BullmqIngestQueue, type IngestDurability, ingestShardOf, ingestShardPrefix, ReplicaNotConfirmedError } from './bullmq-queue.js'
export { closeConnection, openRedis, type RedisClient, type RedisClusterOptions, type RedisTarget } from './connection.js'
export { RedisBus } from './redis-bus.js'
export { RedisHotState } from './redis-hot-state.js'
export { RedisKeys } from './keys.js'
export { type RepeatableJob, type RepeatableRun, scheduleRepeatable } from './repeatable-job.js'

export interface RedisAdapterOptions {
  redisUrl: string
  /** Set (`REDIS_CLUSTER=1`): `redisUrl` is a seed node of a Redis Cluster. */
  cluster?: RedisClusterOptions | undefined
  /** Ingest queue shards (`INGEST_SHARDS`, default 1). */
  ingestShards?: number
  /** `PULSE_ENV`; keys, channels and queue names carry it. */
  env: string
  dedupeWindowMs: number
  /** Write-behind lease (default 60 s). */
  flushLeaseMs?: number
  /** Batches one worker folds at once (default 4). */
  concurrency?: number
  /** How long a worker's claim on a batch lasts unless renewed (`QUEUE_LOCK_MS`, default 30 s). */
  queueLockMs?: number
  /** What an enqueue waits for (`INGEST_DURABILITY`, see BullmqQueueOptions.durability). */
  durability?: IngestDurability
  /** `INGEST_REPLICA_TIMEOUT_MS`. */
  replicaTimeoutMs?: number
  /** Connection and worker errors (ioredis and BullMQ recover by themselves). */
  onError?: (error: unknown) => void
}

/** Cluster-mode adapters, each on its own connections. */
export interface RedisAdapters {
  hot: RedisHotState
  bus: RedisBus
  queue: BullmqIngestQueue
  /** Runs `fn` every `everyMs` once cluster-wide (see {@link scheduleRepeatable}); closed with the rest. */
  scheduleRepeatable (name: string, everyMs: number, fn: (run: RepeatableRun) => Promise<void>): Promise<RepeatableJob>
  /** Closes the queue first (the batch in hand finishes), then the bus and hot state. */
  close (): Promise<void>
}

export function createRedisAdapters (options: RedisAdapterOptions): RedisAdapters {
  const { redisUrl: url, cluster, env, onError } = options
  const errors = onError === undefined ? {} : { onError }
  const hot = new RedisHotState({ connection: url, cluster, env, dedupeWindowMs: options.dedupeWindowMs, ...(options.flushLeaseMs === undefined ? {} : { flushLeaseMs: options.flushLeaseMs }), ...errors })
  const bus = new RedisBus({ url, cluster, env, ...errors })
  const queue = new BullmqIngestQueue({
    url,
    cluster,
    env,
    shards: options.ingestShards ?? 1,
    ...errors,
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.queueLockMs === undefined ? {} : { lockDurationMs: options.queueLockMs }),
    ...(options.durability === undefined ? {} : { durability: options.durability }),
    ...(options.replicaTimeoutMs === undefined ? {} : { replicaTimeoutMs: options.replicaTimeoutMs })
  })
  const jobs: RepeatableJob[] = []
  return {
    hot,
    bus,
    queue,
    async scheduleRepeatable (name, everyMs, fn) {
      const job = await scheduleRepeatable({ url, cluster, env, ...errors }, name, everyMs, fn)
      jobs.push(job)
      return job
    },
    async close () {
      await Promise.all(jobs.map((job) => job.close()))
      await queue.close()
      await Promise.all([bus.close(), hot.close()])
    }
  }
}

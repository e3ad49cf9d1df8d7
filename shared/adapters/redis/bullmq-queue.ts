import { randomUUID } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { type Job, Queue, Worker } from 'bullmq'
import { Cluster } from 'ioredis'
import type { Backlog, BatchHandler, IngestQueue, QueueCounts } from '../../ports/ingest-queue.js'
import type { ScoredItem } from '../../timeseries/bucket.js'
import { bullmqConnection, closeConnection, type RedisClient, type RedisClusterOptions, type RedisTarget } from './connection.js'
import { defineBacklogScripts } from './lua-scripts.js'

/** Key prefix of every BullMQ queue; the hash tag keeps each queue's keys on one cluster slot. */
export const BULLMQ_PREFIX = '{pulse}'

/**
 * Key prefix of ingest shard `shard`. Shard 0 keeps {@link BULLMQ_PREFIX}, so a single-shard
 * deployment keeps its queue; each other shard has its own hash tag, so on a cluster the
 * shards' keys land on different slots (and, slots being spread over masters, on different
 * masters).
 */
export function ingestShardPrefix (shard: number): string {
  return shard === 0 ? BULLMQ_PREFIX : `{pulse-${shard}}`
}

/** The ingest shard of a ticker: a stable hash, so every item of a ticker goes to one shard's queue. */
export function ingestShardOf (ticker: string, shards: number): number {
  return shards <= 1 ? 0 : crc32(ticker) % shards
}

export interface BullmqQueueOptions extends RedisTarget {
  url: string
  /** Set: `url` is a seed node of a Redis Cluster. */
  cluster?: RedisClusterOptions | undefined
  /** `PULSE_ENV`: the queue is `pulse-<env>-ingest`. */
  env: string
  /**
   * Number of ingest queues (`INGEST_SHARDS`, default 1): a batch is split by ticker into
   * one job per shard, and a consumer works on every shard.
   */
  shards?: number
  /** Batches a worker folds at once (default 4). */
  concurrency?: number
  /**
   * Tries per batch before it lands in the failed set (default 30: with the capped backoff,
   * about 13 minutes, so a DynamoDB or Redis outage of several minutes loses no batch).
   */
  attempts?: number
  /** First retry delay; doubles on each further attempt up to {@link MAX_BACKOFF_MS} (default 500 ms). */
  backoffMs?: number
  /**
   * How long a worker's claim on a batch lasts unless renewed (default 30 s). A worker that
   * dies mid-batch holds it this long before another worker retries it.
   */
  lockDurationMs?: number
  /**
   * What {@link BullmqIngestQueue.enqueue} waits for before it resolves (default `none`):
   * `replica` also waits until a replica confirms it holds the job (`WAIT`, up to
   * `replicaTimeoutMs`) and rejects when none does in time; `fsync` and `none` resolve
   * once the primary stored it (with `fsync`, the primary's `appendfsync always` makes
   * that durable: see {@link BullmqIngestQueue.checkDurability}).
   */
  durability?: IngestDurability
  /** Longest wait for a replica under `replica` durability (default 2000 ms). */
  replicaTimeoutMs?: number
  /** Worker errors and batches that failed an attempt. */
  onError?: (error: unknown, jobId?: string) => void
}

export type IngestDurability = 'fsync' | 'replica' | 'none'

/** A batch Redis stored that no replica confirmed in time: the producer must retry it. */
export class ReplicaNotConfirmedError extends Error {
  constructor (readonly timeoutMs: number) {
    super(`no replica confirmed the batch within ${timeoutMs} ms`)
    this.name = 'ReplicaNotConfirmedError'
  }
}

/** Longest pause between two tries of a batch. */
export const MAX_BACKOFF_MS = 30_000

/** Exponential backoff from `delay`, capped, so a long outage is retried steadily, not hourly. */
export function cappedBackoff (attemptsMade: number, delay: number): number {
  return Math.min(MAX_BACKOFF_MS, delay * 2 ** Math.max(0, attemptsMade - 1))
}

interface JobData {
  acceptedAt: number
  items: ScoredItem[]
}

/** How stale the cached backlog may be before a read starts a refresh from Redis. */
export const BACKLOG_REFRESH_MS = 200
/** Key (under each shard's prefix and queue name) of the shard's backlog hash. */
const BACKLOG_KEY = 'pulse-backlog'

/** A shard queue's own connection, with the backlog scripts defined on it. */
async function backlogClient (queue: Queue<JobData>): Promise<RedisClient> {
  // BullMQ types its connection with an interface of its own; it is the ioredis client it was given or made.
  return defineBacklogScripts(await queue.client as unknown as RedisClient)
}

/**
 * The size of a batch as queued, estimated from its strings without serializing it (the
 * gateway counts it on every enqueue, the worker again when it settles the job: both must
 * get the same figure). Close to the JSON BullMQ stores.
 */
export function estimateBatchBytes (items: readonly ScoredItem[]): number {
  let bytes = 2
  for (const item of items) bytes += 80 + item.id.length + item.ticker.length + item.label.length + item.source.length
  return bytes
}

/**
 * The ingest queue on BullMQ, in one or more shards: a batch becomes one job per shard it
 * has items for, retried with exponential backoff; completed jobs are removed, failed ones
 * kept for operators to inspect and retry. All shards' queues share one name and differ in
 * their {@link ingestShardPrefix}.
 */
export class BullmqIngestQueue implements IngestQueue {
  readonly name: string
  readonly #options: BullmqQueueOptions
  readonly #shards: Array<Queue<JobData>>
  readonly #onError: (error: unknown, jobId?: string) => void
  /** Cluster connections this queue opened for BullMQ, which BullMQ shares and does not close. */
  readonly #clusterConnections: Cluster[] = []
  #workers: Array<Worker<JobData>> = []
  /** Each shard's backlog as last read from Redis, and when it was read. */
  readonly #shardBacklog: Backlog[]
  #backlogReadAt = 0
  #backlogRefresh: Promise<void> | undefined
  #closed = false

  constructor (options: BullmqQueueOptions) {
    this.#options = options
    this.name = `pulse-${options.env}-ingest`
    this.#onError = options.onError ?? (() => {})
    // On a single node BullMQ owns its connections, so closing during start-up cannot leave a stray error.
    const connection = this.#connection({})
    this.#shards = Array.from({ length: Math.max(1, options.shards ?? 1) }, (_, shard) => {
      const queue = new Queue<JobData>(this.name, {
        connection,
        prefix: ingestShardPrefix(shard),
        defaultJobOptions: {
          attempts: options.attempts ?? 30,
          backoff: { type: 'capped', delay: options.backoffMs ?? 500 },
          removeOnComplete: true,
          removeOnFail: false
        }
      })
      queue.on('error', (error) => this.#onError(error))
      return queue
    })
    this.#shardBacklog = this.#shards.map(() => ({ items: 0, bytes: 0 }))
  }

  /**
   * Resolves with the job ids (comma-separated when the batch spans shards) once Redis has
   * stored every job, and under `replica` durability once a replica holds each of them. If
   * one shard fails (or no replica confirms in time), the others may still hold their part:
   * a producer that retries the whole batch counts nothing twice, since the fold dedupes by
   * item id.
   */
  async enqueue (items: ScoredItem[], acceptedAt: number): Promise<string> {
    const byShard = new Map<number, ScoredItem[]>()
    for (const item of items) {
      const shard = ingestShardOf(item.ticker, this.#shards.length)
      const group = byShard.get(shard)
      if (group === undefined) byShard.set(shard, [item])
      else group.push(item)
    }
    const ids = await Promise.all([...byShard].map(async ([shard, group]) => {
      const jobId = randomUUID()
      const queue = this.#shards[shard] as Queue<JobData>
      const bytes = estimateBatchBytes(group)
      const client = await backlogClient(queue)
      const backlogKey = queue.toKey(BACKLOG_KEY)
      // Counted alongside the add: the sum does not care which lands first, and the worker
      // settles each job once. The reply refreshes this process's view of the shared backlog.
      const [added, counted] = await Promise.allSettled([
        queue.add('batch', { acceptedAt, items: group }, { jobId }),
        client.pulseBacklogAdd(1, backlogKey, group.length, bytes)
      ])
      if (added.status === 'rejected') {
        if (counted.status === 'fulfilled') await client.pulseBacklogAdd(1, backlogKey, -group.length, -bytes).catch(() => {})
        throw added.reason
      }
      if (counted.status === 'fulfilled') this.#shardBacklog[shard] = { items: Number(counted.value[0]), bytes: Number(counted.value[1]) }
      if (this.#options.durability === 'replica') {
        // WAIT covers every write this connection made before it, the add included.
        const timeoutMs = this.#options.replicaTimeoutMs ?? 2000
        const client = await queue.client
        const confirmed = Number(await client.runCommand('wait', [1, timeoutMs]))
        if (!(confirmed >= 1)) throw new ReplicaNotConfirmedError(timeoutMs)
      }
      return jobId
    }))
    return ids.join(',')
  }

  /**
   * Whether the Redis server backs the configured durability: under `fsync` it must run
   * `appendonly yes` with `appendfsync always`. Returns a warning to log, or `undefined`.
   * Servers that forbid CONFIG (managed services) cannot be checked; that is a warning too.
   */
  async checkDurability (): Promise<string | undefined> {
    if (this.#options.durability !== 'fsync') return undefined
    const client = await this.queue.client
    let settings: Record<string, string>
    try {
      const reply = await client.runCommand('config', ['GET', 'appendonly', 'appendfsync']) as string[]
      settings = Object.fromEntries(reply.flatMap((value, i) => i % 2 === 0 ? [[value, reply[i + 1] ?? '']] : []))
    } catch (err) {
      return `INGEST_DURABILITY=fsync: could not read the Redis persistence settings (${(err as Error).message}); make sure the server runs appendonly yes with appendfsync always`
    }
    if (settings.appendonly !== 'yes' || settings.appendfsync !== 'always') {
      return `INGEST_DURABILITY=fsync: Redis runs appendonly ${settings.appendonly ?? '?'} with appendfsync ${settings.appendfsync ?? '?'}; an acknowledged batch can be lost in a crash unless it runs appendonly yes with appendfsync always`
    }
    return undefined
  }

  /** Works on every shard, each with its own BullMQ worker and `concurrency` batches at once. */
  async consume (handler: BatchHandler): Promise<void> {
    if (this.#workers.length > 0) throw new Error(`already consuming ${this.name}`)
    // BullMQ's blocking reads need a connection that retries forever.
    const connection = this.#connection({ maxRetriesPerRequest: null })
    this.#workers = this.#shards.map((_, shard) => this.#work(shard, connection, handler))
    await Promise.all(this.#workers.map(async (worker) => await worker.waitUntilReady()))
  }

  #work (shard: number, connection: ReturnType<typeof bullmqConnection>, handler: BatchHandler): Worker<JobData> {
    const worker = new Worker<JobData>(this.name, async (job: Job<JobData>) => {
      // A failed attempt, or a worker that died holding the job (stalled: taken over without
      // a failure), may have folded part of the batch without publishing it.
      const redelivered = job.attemptsMade > 0 || job.attemptsStarted > 1
      await handler({ id: job.id ?? '', redelivered, acceptedAt: job.data.acceptedAt, items: job.data.items })
      // Before BullMQ completes the job: a worker that dies in between folds it again
      // (counting nothing twice) and the settle is not repeated.
      await this.#settle(shard, job)
    }, {
      connection,
      prefix: ingestShardPrefix(shard),
      concurrency: this.#options.concurrency ?? 4,
      lockDuration: this.#options.lockDurationMs ?? 30_000,
      // Stalled batches are looked for as often as a lock can expire.
      stalledInterval: this.#options.lockDurationMs ?? 30_000,
      settings: { backoffStrategy: (attemptsMade) => cappedBackoff(attemptsMade, this.#options.backoffMs ?? 500) }
    })
    worker.on('error', (error) => this.#onError(error))
    worker.on('failed', (job, error) => {
      this.#onError(error, job?.id)
      // Out of tries: the batch waits in the failed set for an operator, not for the fold.
      if (job !== undefined && job.attemptsMade >= (job.opts.attempts ?? 1)) this.#settle(shard, job).catch((err: unknown) => this.#onError(err, job.id))
    })
    return worker
  }

  /** Summed over every shard. */
  async counts (): Promise<QueueCounts> {
    const all = await Promise.all(this.#shards.map(async (queue) => await queue.getJobCounts('waiting', 'delayed', 'prioritized', 'paused', 'active', 'failed')))
    return all.reduce<QueueCounts>((sum, c) => ({
      waiting: sum.waiting + (c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0) + (c.paused ?? 0),
      active: sum.active + (c.active ?? 0),
      failed: sum.failed + (c.failed ?? 0)
    }), { waiting: 0, active: 0, failed: 0 })
  }

  /**
   * Summed over every shard, as last read. A read finding the figure older than
   * {@link BACKLOG_REFRESH_MS} starts a refresh (one script per shard) and returns the
   * cached figure; each enqueue refreshes the shards it wrote to from its reply. So a
   * gateway under load sees every gateway's batches within a batch of its own, and an
   * idle one sends nothing.
   */
  backlog (): Backlog {
    if (Date.now() - this.#backlogReadAt >= BACKLOG_REFRESH_MS && this.#backlogRefresh === undefined && !this.#closed) {
      this.#backlogRefresh = this.#readBacklog().catch((err: unknown) => this.#onError(err)).finally(() => { this.#backlogRefresh = undefined })
    }
    return this.#summedBacklog()
  }

  async refreshBacklog (): Promise<Backlog> {
    await this.#readBacklog()
    return this.#summedBacklog()
  }

  #summedBacklog (): Backlog {
    return this.#shardBacklog.reduce((sum, b) => ({ items: sum.items + Math.max(0, b.items), bytes: sum.bytes + Math.max(0, b.bytes) }), { items: 0, bytes: 0 })
  }

  /** Reads every shard's backlog from Redis now. */
  async #readBacklog (): Promise<void> {
    this.#backlogReadAt = Date.now()
    await Promise.all(this.#shards.map(async (queue, shard) => {
      const client = await backlogClient(queue)
      const k = queue.keys
      const [items, bytes] = await client.pulseBacklogRead(6, queue.toKey(BACKLOG_KEY), k.wait as string, k.paused as string, k.active as string, k.delayed as string, k.prioritized as string)
      this.#shardBacklog[shard] = { items: Number(items), bytes: Number(bytes) }
    }))
    this.#backlogReadAt = Date.now()
  }

  /**
   * Redis answers. On a cluster that is any node: a master that is down holds up only its
   * shard, and failing readiness for it would take every gateway out of service at once.
   */
  async ping (): Promise<void> {
    const client = await this.queue.client
    await client.runCommand('ping', [])
  }

  /** Lets the workers finish the batches in hand, then closes every connection. */
  async close (): Promise<void> {
    this.#closed = true
    await this.#backlogRefresh
    await Promise.all(this.#workers.map(async (worker) => await worker.close()))
    await Promise.all(this.#shards.map(async (queue) => await queue.close()))
    await Promise.all(this.#clusterConnections.map(closeConnection))
  }

  /** The underlying BullMQ queue of shard 0, for operators' tools (failed jobs, retries). */
  get queue (): Queue<JobData> {
    return this.#shards[0] as Queue<JobData>
  }

  /** Every shard's BullMQ queue, in shard order. */
  get shardQueues (): ReadonlyArray<Queue<JobData>> {
    return this.#shards
  }

  /** Takes a folded (or finally failed) job's items out of its shard's backlog, once per job. */
  async #settle (shard: number, job: Job<JobData>): Promise<void> {
    const queue = this.#shards[shard] as Queue<JobData>
    const client = await backlogClient(queue)
    const items = job.data.items
    await client.pulseBacklogSettle(2, queue.toKey(job.id ?? ''), queue.toKey(BACKLOG_KEY), items.length, estimateBatchBytes(items))
  }

  #connection (tuning: { maxRetriesPerRequest?: null }): ReturnType<typeof bullmqConnection> {
    const connection = bullmqConnection(this.#options, tuning)
    if (connection instanceof Cluster) {
      connection.on('error', (error: unknown) => this.#onError(error))
      this.#clusterConnections.push(connection)
    }
    return connection
  }
}

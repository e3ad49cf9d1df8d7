import { randomUUID } from 'node:crypto'
import { type Job, Queue, Worker } from 'bullmq'
import type { BatchHandler, IngestQueue, QueueCounts } from '../../ports/index.js'
import type { ScoredItem } from '../../timeseries/index.js'
import { redisOptionsFromUrl } from './connection.js'

/** Key prefix of every BullMQ queue; the hash tag keeps each queue's keys on one cluster slot. */
export const BULLMQ_PREFIX = '{pulse}'

export interface BullmqQueueOptions {
  url: string
  /** `PULSE_ENV`: the queue is `pulse-<env>-ingest`. */
  env: string
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

/**
 * The ingest queue on BullMQ: one job per accepted batch, retried with exponential
 * backoff; completed jobs are removed, failed ones kept for operators to inspect and retry.
 */
export class BullmqIngestQueue implements IngestQueue {
  readonly name: string
  readonly #options: BullmqQueueOptions
  readonly #queue: Queue<JobData>
  readonly #onError: (error: unknown, jobId?: string) => void
  #worker: Worker<JobData> | undefined

  constructor (options: BullmqQueueOptions) {
    this.#options = options
    this.name = `pulse-${options.env}-ingest`
    this.#onError = options.onError ?? (() => {})
    // BullMQ owns its connections, so closing during start-up cannot leave a stray error.
    this.#queue = new Queue<JobData>(this.name, {
      connection: redisOptionsFromUrl(options.url),
      prefix: BULLMQ_PREFIX,
      defaultJobOptions: {
        attempts: options.attempts ?? 30,
        backoff: { type: 'capped', delay: options.backoffMs ?? 500 },
        removeOnComplete: true,
        removeOnFail: false
      }
    })
    this.#queue.on('error', (error) => this.#onError(error))
  }

  /**
   * Resolves with the job id once Redis has stored the job, and under `replica` durability
   * once a replica has it too. A rejection after the add (no replica in time) leaves the
   * job queued on the primary: the producer's retry is then folded as duplicates.
   */
  async enqueue (items: ScoredItem[], acceptedAt: number): Promise<string> {
    const jobId = randomUUID()
    await this.#queue.add('batch', { acceptedAt, items }, { jobId })
    if (this.#options.durability === 'replica') {
      // WAIT covers every write this connection made before it, the add included.
      const timeoutMs = this.#options.replicaTimeoutMs ?? 2000
      const client = await this.#queue.client
      const confirmed = Number(await client.runCommand('wait', [1, timeoutMs]))
      if (!(confirmed >= 1)) throw new ReplicaNotConfirmedError(timeoutMs)
    }
    return jobId
  }

  /**
   * Whether the Redis server backs the configured durability: under `fsync` it must run
   * `appendonly yes` with `appendfsync always`. Returns a warning to log, or `undefined`.
   * Servers that forbid CONFIG (managed services) cannot be checked; that is a warning too.
   */
  async checkDurability (): Promise<string | undefined> {
    if (this.#options.durability !== 'fsync') return undefined
    const client = await this.#queue.client
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

  async consume (handler: BatchHandler): Promise<void> {
    if (this.#worker !== undefined) throw new Error(`already consuming ${this.name}`)
    // BullMQ's blocking reads need a connection that retries forever.
    const connection = { ...redisOptionsFromUrl(this.#options.url), maxRetriesPerRequest: null }
    const worker = new Worker<JobData>(this.name, async (job: Job<JobData>) => {
      // A failed attempt, or a worker that died holding the job (stalled: taken over without
      // a failure), may have folded part of the batch without publishing it.
      const redelivered = job.attemptsMade > 0 || job.attemptsStarted > 1
      await handler({ id: job.id ?? '', redelivered, acceptedAt: job.data.acceptedAt, items: job.data.items })
    }, {
      connection,
      prefix: BULLMQ_PREFIX,
      concurrency: this.#options.concurrency ?? 4,
      lockDuration: this.#options.lockDurationMs ?? 30_000,
      // Stalled batches are looked for as often as a lock can expire.
      stalledInterval: this.#options.lockDurationMs ?? 30_000,
      settings: { backoffStrategy: (attemptsMade) => cappedBackoff(attemptsMade, this.#options.backoffMs ?? 500) }
    })
    worker.on('error', (error) => this.#onError(error))
    worker.on('failed', (job, error) => this.#onError(error, job?.id))
    this.#worker = worker
    await worker.waitUntilReady()
  }

  async counts (): Promise<QueueCounts> {
    const c = await this.#queue.getJobCounts('waiting', 'delayed', 'prioritized', 'paused', 'active', 'failed')
    return {
      waiting: (c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0) + (c.paused ?? 0),
      active: c.active ?? 0,
      failed: c.failed ?? 0
    }
  }

  async ping (): Promise<void> {
    const client = await this.#queue.client
    await client.runCommand('ping', [])
  }

  /** Lets the worker finish the batches in hand, then closes every connection. */
  async close (): Promise<void> {
    await this.#worker?.close()
    await this.#queue.close()
  }

  /** The underlying BullMQ queue, for operators' tools (failed jobs, retries). */
  get queue (): Queue<JobData> {
    return this.#queue
  }
}

import { Queue, Worker } from 'bullmq'
import { Cluster } from 'ioredis'
import { BULLMQ_PREFIX } from './bullmq-queue.js'
import { bullmqConnection, closeConnection, type RedisTarget } from './connection.js'

export interface RepeatableOptions extends RedisTarget {
  /** `PULSE_ENV`: the queue is `pulse-<env>-<name>`. */
  env: string
  onError?: (error: unknown) => void
}

/** One scheduled run, as the function sees it. */
export interface RepeatableRun {
  /** Unique per run across the cluster. */
  jobId: string
}

export interface RepeatableJob {
  /** Stops this process taking part (the schedule stays for the others). */
  close (): Promise<void>
}

/**
 * Runs `fn` every `everyMs` once cluster-wide: a BullMQ job scheduler creates one job per
 * interval and whichever process's worker takes it runs it. Every process may call this;
 * the scheduler is upserted, not duplicated.
 */
export async function scheduleRepeatable (options: RepeatableOptions, name: string, everyMs: number, fn: (run: RepeatableRun) => Promise<void>): Promise<RepeatableJob> {
  const onError = options.onError ?? (() => {})
  const queueName = `pulse-${options.env}-${name}`
  const connection = bullmqConnection(options, { maxRetriesPerRequest: null })
  if (connection instanceof Cluster) connection.on('error', onError)
  const queue = new Queue(queueName, { connection, prefix: BULLMQ_PREFIX })
  queue.on('error', onError)
  await queue.upsertJobScheduler(name, { every: everyMs }, {
    name,
    opts: { removeOnComplete: true, removeOnFail: 100 }
  })
  const worker = new Worker(queueName, async (job) => {
    await fn({ jobId: job.id ?? '' })
  }, { connection, prefix: BULLMQ_PREFIX, concurrency: 1 })
  worker.on('error', onError)
  worker.on('failed', (_job, error) => onError(error))
  await worker.waitUntilReady()
  return {
    async close () {
      await worker.close()
      await queue.close()
      if (connection instanceof Cluster) await closeConnection(connection)
    }
  }
}

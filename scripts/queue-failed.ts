import { pathToFileURL } from 'node:url'
import { BullmqIngestQueue } from '../shared/adapters/redis/bullmq-queue.js'
import { loadConfig } from '../shared/config/config.js'

export interface FailedReport {
  failed: Array<{ id: string, items: number, attempts: number, reason: string, failedAt: string }>
  retried: number
}

/**
 * `npm run queue:failed [-- --retry]`: lists the ingest batches that failed every try, in
 * every ingest shard (in cluster mode, `REDIS_URL`, `REDIS_CLUSTER`, `INGEST_SHARDS` and
 * `PULSE_ENV` as the workers have them); `--retry` puts them back on their queue. Items keep their ids, so a batch that was partly folded is not
 * counted twice.
 */
export async function main (args: readonly string[], env: Record<string, string | undefined> = process.env): Promise<FailedReport> {
  const config = loadConfig(env)
  if (config.redisUrl === undefined) throw new Error('REDIS_URL: needed (the failed set lives in the cluster queue)')
  const ingest = new BullmqIngestQueue({ url: config.redisUrl, cluster: config.redisCluster, env: config.env, shards: config.ingestShards })
  try {
    const jobs = (await Promise.all(ingest.shardQueues.map(async (queue) => await queue.getFailed()))).flat()
    const failed = jobs.map((job) => ({
      id: job.id ?? '',
      items: job.data.items.length,
      attempts: job.attemptsMade,
      reason: job.failedReason,
      failedAt: new Date(job.finishedOn ?? job.timestamp).toISOString()
    }))
    let retried = 0
    if (args.includes('--retry')) {
      for (const job of jobs) {
        await job.retry('failed')
        retried++
      }
    }
    return { failed, retried }
  } finally {
    await ingest.close()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const report = await main(process.argv.slice(2))
  for (const job of report.failed) console.log(`${job.id}  ${job.items} items  ${job.attempts} tries  ${job.failedAt}  ${job.reason}`)
  console.log(`${report.failed.length} failed batch(es)${report.retried > 0 ? `; ${report.retried} put back on the queue` : ''}`)
}

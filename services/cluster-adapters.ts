import type { Logger } from 'pino'
import { DynamoArchive } from '../shared/adapters/dynamo/dynamo-archive.js'
import { tableName } from '../shared/adapters/dynamo/table.js'
import { createRedisAdapters } from '../shared/adapters/redis/index.js'
import type { Config } from '../shared/config/config.js'
import type { PulseAdapters } from './adapters.js'

/**
 * Cluster mode: Redis hot state (atomic Lua fold), Redis pub/sub, BullMQ ingest queue
 * (`INGEST_SHARDS` queues), and the DynamoDB archive. Redis is one node, or with
 * `REDIS_CLUSTER=1` a Redis Cluster (sharded pub/sub). With `DYNAMODB_ENDPOINT` set (dynalite, DynamoDB Local) a missing
 * table is created; on real DynamoDB the table comes from `npm run table:create`.
 */
export async function createClusterAdapters (config: Config, log: Logger): Promise<PulseAdapters> {
  const redisUrl = config.redisUrl as string
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
    scheduleRepeatable: async (name, everyMs, fn) => await redis.scheduleRepeatable(name, everyMs, async () => { await fn() }),
    close: async () => {
      await redis.close()
      await archive.close()
    }
  }
}

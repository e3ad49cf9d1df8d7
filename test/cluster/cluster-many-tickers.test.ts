import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createDynamoClients } from '../../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../../shared/adapters/dynamo/dynamo-archive.js'
import { tableName } from '../../shared/adapters/dynamo/table.js'
import { ingestShardOf, RedisHotState } from '../../shared/adapters/redis/index.js'
import type { Bucket } from '../../shared/timeseries/bucket.js'
import { expectedBuckets } from '../helpers/expected.js'
import { compare, makeItems, postUntilAccepted } from '../helpers/fault-cluster.js'
import { startDynaliteProcess, startPulseProcess } from '../helpers/processes.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'

// Real processes and 1,000 tickers' worth of buckets on a shared machine.
t.setTimeout(600_000)

t.test('1,000 configured tickers on a Redis Cluster: items for every ticker, every series equals the fold in Redis and DynamoDB', async (t) => {
  const tickers = Array.from({ length: 1000 }, (_, i) => `K${String(i).padStart(3, '0')}`)
  t.equal(new Set(tickers.map((ticker) => ingestShardOf(ticker, 4))).size, 4, 'the tickers go through all four shards')
  const cluster = await startRedisCluster(t)
  const dynalite = await startDynaliteProcess(t)
  const env = {
    REDIS_URL: cluster.url,
    REDIS_CLUSTER: '1',
    INGEST_SHARDS: '4',
    DYNAMODB_ENDPOINT: dynalite.endpoint,
    PULSE_ENV: `k${randomBytes(3).toString('hex')}`,
    TICKERS: tickers.join(','),
    FLUSH_INTERVAL_MS: '500'
  }
  const gateway = await startPulseProcess(t, { role: 'gateway', env })
  await startPulseProcess(t, { role: 'worker', env })
  await startPulseProcess(t, { role: 'worker', env })

  const listed = await (await fetch(`${gateway.url}/api/v2/tickers`)).json() as { tickers: unknown[] }
  t.equal(listed.tickers.length, 1000, 'the gateway lists all 1,000 tickers')

  // Three items per ticker over the last two hours, plus a resend of every tenth, in batches of 1,000.
  const items = makeItems('k', 3000, tickers, Date.now(), 7200)
  const batches = [...items, ...items.filter((_, i) => i % 10 === 0)]
  const started = Date.now()
  for (let i = 0; i < batches.length; i += 1000) await postUntilAccepted(gateway, batches.slice(i, i + 1000))
  t.comment(`posted ${batches.length} items for ${tickers.length} tickers in ${Math.ceil(batches.length / 1000)} batches`)

  const refs = [...expectedBuckets(items, Date.now()).values()].map((e) => e.ref)
  const hot = new RedisHotState({ connection: cluster.url, cluster: {}, env: env.PULSE_ENV, dedupeWindowMs: 86_400_000 })
  t.teardown(async () => await hot.close())
  const { doc, client } = createDynamoClients({ region: 'us-east-1', endpoint: dynalite.endpoint })
  t.teardown(() => client.destroy())
  const archive = new DynamoArchive({ client: doc, tableName: tableName(env.PULSE_ENV) })

  const settle = async (read: () => Promise<Bucket[]>, ms: number): Promise<{ problems: string[], buckets: number }> => {
    const deadline = Date.now() + ms
    for (;;) {
      const result = compare(items, await read().catch(() => []))
      if (result.problems.length === 0 || Date.now() > deadline) return result
      await sleep(500)
    }
  }
  const inRedis = await settle(async () => await hot.get(refs), 240_000)
  t.same(inRedis.problems.slice(0, 10), [], `all ${inRedis.buckets} buckets of 1,000 series × 8 resolutions in Redis equal the domain fold`)
  t.comment(`folded in ${Date.now() - started} ms`)
  const inDynamo = await settle(async () => await archive.get(refs, Date.now()), 240_000)
  t.same(inDynamo.problems.slice(0, 10), [], `and in DynamoDB (${inDynamo.buckets} buckets)`)
})

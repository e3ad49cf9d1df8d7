import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { BULLMQ_PREFIX } from '../../shared/adapters/redis/bullmq-queue.js'
import { loadConfig } from '../../shared/config/config.js'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { postOnce } from '../helpers/fault-cluster.js'
import { startDynaliteProcess, startPulseProcess } from '../helpers/processes.js'
import { startRedisServer } from '../helpers/redis-server.js'

function batch (prefix: string): ScoredItem[] {
  const now = Date.now()
  return Array.from({ length: 5 }, (_, i) => ({ id: `${prefix}${i}`, ticker: 'AAPL', ts: now - i * 1000, score: 0.3, label: labelFor(0.3), source: 'tiingo' }))
}

async function replicaLinked (replica: Redis): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if ((await replica.info('replication')).includes('master_link_status:up')) return true
    await sleep(100)
  }
  return false
}

t.test('INGEST_DURABILITY=replica: a 202 means a replica holds the batch; without a replica the producer gets 503', async (t) => {
  const primary = await startRedisServer(t)
  const replicaServer = await startRedisServer(t, { replicaOf: primary.port })
  const replica = new Redis(replicaServer.url, { maxRetriesPerRequest: 1, lazyConnect: true })
  replica.on('error', () => {})
  t.teardown(() => replica.disconnect())
  t.ok(await replicaLinked(replica), 'the replica is in sync with the primary')

  const dynalite = await startDynaliteProcess(t)
  const env = `d${randomBytes(3).toString('hex')}`
  const gateway = await startPulseProcess(t, {
    role: 'gateway',
    env: {
      REDIS_URL: primary.url,
      DYNAMODB_ENDPOINT: dynalite.endpoint,
      PULSE_ENV: env,
      TICKERS: 'AAPL',
      INGEST_DURABILITY: 'replica',
      INGEST_REPLICA_TIMEOUT_MS: '1000'
    }
  })
  const waitList = `${BULLMQ_PREFIX}:pulse-${env}-ingest:wait`

  for (let i = 0; i < 3; i++) {
    t.equal(await postOnce(gateway, batch(`b${i}-`)), 202, `batch ${i} accepted`)
    // Read at once, no polling: the 202 came only after the replica confirmed the job.
    t.equal(await replica.llen(waitList), i + 1, `batch ${i} is on the replica when the 202 arrives`)
  }

  await replicaServer.kill()
  const res = await fetch(`${gateway.url}/api/v2/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer test-ingest-key-0123456789' },
    body: JSON.stringify(batch('late-').map((item) => ({ id: item.id, ticker: item.ticker, timestamp: new Date(item.ts).toISOString(), score: item.score, source: item.source })))
  })
  const body = await res.json() as { error?: { code?: string } }
  t.equal(res.status, 503, 'with the replica gone the batch is refused, so the producer retries')
  t.equal(body.error?.code, 'PULSE_ERR_UNAVAILABLE')
  t.equal((await fetch(`${gateway.url}/healthz`)).status, 200, 'the gateway stays up')
})

t.test('INGEST_DURABILITY=fsync (the default) warns at start when Redis does not fsync every write', async (t) => {
  const redis = await startRedisServer(t)
  const dynalite = await startDynaliteProcess(t)
  const gateway = await startPulseProcess(t, {
    role: 'gateway',
    env: { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: `d${randomBytes(3).toString('hex')}`, TICKERS: 'AAPL' }
  })
  t.match(gateway.output(), /INGEST_DURABILITY=fsync: Redis runs appendonly no with appendfsync always/, 'the operator is told what is missing')
  t.equal(await postOnce(gateway, batch('f')), 202, 'ingest still works')
})

t.test('INGEST_DURABILITY is validated at start', async (t) => {
  const base = { INGEST_API_KEY: 'test-ingest-key-0123456789' }
  t.throws(() => loadConfig({ ...base, INGEST_DURABILITY: 'replica' }), /INGEST_DURABILITY: replica needs REDIS_URL/, 'replica without Redis')
  t.throws(() => loadConfig({ ...base, REDIS_URL: 'redis://127.0.0.1:1', INGEST_DURABILITY: 'always' }), /INGEST_DURABILITY/, 'an unknown setting')
  t.throws(() => loadConfig({ ...base, REDIS_URL: 'redis://127.0.0.1:1', INGEST_REPLICA_TIMEOUT_MS: '0' }), /INGEST_REPLICA_TIMEOUT_MS/, 'a zero timeout')
  t.equal(loadConfig({ ...base, REDIS_URL: 'redis://127.0.0.1:1' }).ingestDurability, 'fsync', 'fsync by default')
  t.equal(loadConfig({ ...base, REDIS_URL: 'redis://127.0.0.1:1', INGEST_DURABILITY: 'replica' }).ingestReplicaTimeoutMs, 2000)
})

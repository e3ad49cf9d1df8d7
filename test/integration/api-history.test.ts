import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import t from 'tap'
import { RedisKeys } from '../../shared/adapters/redis/keys.js'
import { clearOfMinuteBoundary, eventually, startTestPulse } from '../helpers/pulse.js'
import { sharedDynalite, sharedRedisServer, uniqueEnv } from '../helpers/shared-services.js'

const iso = (ms: number): string => new Date(ms).toISOString()
const MINUTE = 60_000

t.test('history: complete buckets ascending, the partial one apart, honest cache flags', async (t) => {
  await clearOfMinuteBoundary()
  const p = await startTestPulse(t)
  const now = Date.now()
  const current = now - (now % MINUTE)
  const items = [3, 2, 1, 0].map((ago, i) => ({ id: `h${i}`, ticker: 'NVDA', timestamp: iso(current - ago * MINUTE + 1000), score: (i - 1.5) / 2, source: 'tiingo' }))
  t.equal((await p.post(items)).status, 202)
  const body = await eventually(async () => {
    const res = await p.get('/api/v2/timeseries/NVDA?resolution=1m')
    return res.body.buckets.length === 3 && res.body.partial_bucket !== null ? res.body : undefined
  }, 10_000, 'three complete buckets and one partial')
  t.same(body.buckets.map((b: { timestamp: string }) => b.timestamp), [3, 2, 1].map((ago) => iso(current - ago * MINUTE).replace('.000Z', 'Z')))
  t.ok(body.buckets.every((b: { is_partial: boolean, progress_pct?: number }) => !b.is_partial && b.progress_pct === undefined))
  t.equal(body.partial_bucket.timestamp, iso(current).replace('.000Z', 'Z'))
  t.equal(body.partial_bucket.is_partial, true)
  t.ok(body.partial_bucket.progress_pct >= 0 && body.partial_bucket.progress_pct <= 100)
  t.equal(body.partial_bucket.next_update_at, iso(current + MINUTE).replace('.000Z', 'Z'))
  t.type(body.query_time_ms, 'number')
  const again = await p.get('/api/v2/timeseries/NVDA?resolution=1m')
  t.equal(again.body.cache_hit, true, 'a repeat is served from the L1 cache')
  const first = await p.get('/api/v2/timeseries/TSLA?resolution=24h')
  t.equal(first.body.cache_hit, false, 'a first read of a series is a miss')

  const window = await p.get(`/api/v2/timeseries/NVDA?resolution=1m&start=${iso(current - 2 * MINUTE)}&end=${iso(current - MINUTE)}`)
  t.equal(window.body.buckets.length, 1, 'start <= bucket start < end')
  t.equal(window.body.buckets[0].timestamp, iso(current - 2 * MINUTE).replace('.000Z', 'Z'))
})

t.test('history: concurrent misses of one series share one load', async (t) => {
  const p = await startTestPulse(t)
  const results = await Promise.all(Array.from({ length: 20 }, async () => await p.get('/api/v2/timeseries/AMZN?resolution=5m')))
  t.ok(results.every((r) => r.status === 200))
  t.equal(p.pulse.app?.pulse.cache.loads, 1, 'the stores were read once')
  const hits = await p.get('/api/v2/timeseries/AMZN?resolution=5m')
  t.equal(hits.body.cache_hit, true)
})

t.test('history: data survives a restart (journal + archive)', async (t) => {
  // Both runs on one DATA_DIR, journal and embedded archive alike, as an operator restarts Pulse.
  const dataDir = await mkdtemp(join(tmpdir(), 'pulse-restart-'))
  t.teardown(async () => await rm(dataDir, { recursive: true, force: true }))
  const first = await startTestPulse({ teardown: () => {} }, { DATA_DIR: dataDir })
  const now = Date.now()
  const items = Array.from({ length: 50 }, (_, i) => ({ id: `r${i}`, ticker: 'META', timestamp: iso(now - i * 1000), score: 0.01 * i, source: 'tiingo' }))
  t.equal((await first.post(items)).status, 202)
  // Stop at once: the batch is durable in the journal even if no flush has run.
  await first.pulse.close()
  const second = await startTestPulse(t, { DATA_DIR: dataDir })
  const bucket = await eventually(async () => {
    const { body } = await second.get('/api/v2/timeseries/META?resolution=24h')
    return body.partial_bucket?.count === 50 ? body.partial_bucket : undefined
  }, 10_000, 'replayed bucket')
  t.equal(bucket.count, 50)
  t.equal((await second.post(items.slice(0, 10))).status, 202, 'the same items again')
  await new Promise((resolve) => setTimeout(resolve, 300))
  const { body } = await second.get('/api/v2/timeseries/META?resolution=24h')
  t.equal(body.partial_bucket.count, 50, 'dedupe survived the restart')
})

t.test('history: bad queries get 4xx with codes', async (t) => {
  const p = await startTestPulse(t)
  const cases: Array<[string, number, string]> = [
    ['/api/v2/timeseries/ZZZZ?resolution=1m', 404, 'PULSE_ERR_UNKNOWN_TICKER'],
    ['/api/v2/timeseries/AA%23PL?resolution=1m', 404, 'PULSE_ERR_UNKNOWN_TICKER'],
    ['/api/v2/timeseries/AAPL', 400, 'PULSE_ERR_BAD_RESOLUTION'],
    ['/api/v2/timeseries/AAPL?resolution=2m', 400, 'PULSE_ERR_BAD_RESOLUTION'],
    ['/api/v2/timeseries/AAPL?resolution=1m&start=yesterday', 400, 'PULSE_ERR_BAD_RANGE'],
    ['/api/v2/timeseries/AAPL?resolution=1m&start=2025-12-21T10:00:00Z&end=2025-12-21T09:00:00Z', 400, 'PULSE_ERR_BAD_RANGE'],
    ['/api/v2/timeseries/AAPL?resolution=1m&start=a&start=b', 400, 'PULSE_ERR_BAD_RANGE'],
    ['/api/v2/nothing', 404, 'PULSE_ERR_NOT_FOUND']
  ]
  for (const [path, status, code] of cases) {
    const res = await p.get(path)
    t.equal(res.status, status, `${path}: status`)
    t.equal(res.body?.error?.code, code, `${path}: code`)
  }
  const long = await p.get('/api/v2/timeseries/AAPL?resolution=1m&start=2025-12-01T00:00:00Z&end=2025-12-21T00:00:00Z')
  t.equal(long.status, 200, 'a range of more than 1500 buckets is answered a page at a time, not refused')
})

t.test('tickers, health, readiness and docs', async (t) => {
  await clearOfMinuteBoundary()
  const p = await startTestPulse(t)
  await p.post([{ id: 't1', ticker: 'JPM', timestamp: iso(Date.now()), score: 0.3, source: 'tiingo' }])
  const tickers = await eventually(async () => {
    const { body } = await p.get('/api/v2/tickers')
    return body.tickers.find((x: { ticker: string }) => x.ticker === 'JPM')?.partial_1m !== null ? body.tickers : undefined
  }, 10_000, 'JPM live')
  t.equal(tickers.length, 13)
  t.same((await p.get('/healthz')).body, { status: 'ok' })
  const ready = await p.get('/readyz')
  t.equal(ready.status, 200)
  t.same(ready.body.checks, { hot_state: 'ok', queue: 'ok', archive: 'ok', bus: 'ok' })
  const docs = await p.get('/docs/json')
  t.equal(docs.status, 200)
  t.ok(docs.body.paths['/api/v2/items'], 'the OpenAPI document lists ingest')
  t.ok(docs.body.paths['/api/v2/timeseries/{ticker}'], 'and history')
})

t.test('history: a hot state that answers with errors is a 503, never an empty success', async (t) => {
  const redis = await sharedRedisServer()
  const pulseEnv = uniqueEnv('h')
  const env = { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: (await sharedDynalite()).endpoint, PULSE_ENV: pulseEnv, TICKERS: 'AAPL' }
  const gateway = await startTestPulse(t, { ...env, ROLE: 'gateway' }, { drainMs: 0 })
  await startTestPulse(t, { ...env, ROLE: 'worker' })
  t.equal((await gateway.post([{ id: 'a', ticker: 'AAPL', timestamp: iso(Date.now() - 10 * MINUTE), score: 0.5, source: 'tiingo' }])).status, 202)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const index = new RedisKeys(pulseEnv).index('AAPL', '5m')
  await eventually(async () => await admin.zcard(index) === 1 ? true : undefined, 15_000, 'the item to be folded')

  // The series index is no longer a sorted set: every read of it fails with WRONGTYPE, as
  // a cluster node answering MOVED or a failing script would. The archive still answers.
  const saved = await admin.dumpBuffer(index)
  await admin.del(index)
  await admin.set(index, 'not a sorted set')
  const res = await gateway.get('/api/v2/timeseries/AAPL?resolution=5m')
  t.equal(res.status, 503, 'a failed hot-state read is not a 200')
  t.equal(res.body.error?.code, 'PULSE_ERR_UNAVAILABLE')

  await admin.del(index)
  await admin.restore(index, 0, saved as Buffer)
  const healed = await gateway.get('/api/v2/timeseries/AAPL?resolution=5m')
  t.equal(healed.status, 200, 'served again once the hot state answers')
  t.equal(healed.body.buckets.length, 1, 'with the bucket')
})

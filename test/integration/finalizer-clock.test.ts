import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import t from 'tap'
import { MemoryBus } from '../../shared/adapters/memory/memory-bus.js'
import { RedisKeys } from '../../shared/adapters/redis/keys.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import type { BucketEvent } from '../../shared/ports/bus.js'
import { type ScoredItem } from '../../shared/timeseries/bucket.js'
import { seriesKey } from '../../shared/timeseries/keys.js'
import { DURATION_MS, RESOLUTIONS, bucketStart } from '../../shared/timeseries/resolutions.js'
import { Finalizer } from '../../services/aggregator/finalizer.js'
import { clearOfMinuteBoundary } from '../helpers/pulse.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { foldWithTerm } from '../helpers/fold-with-term.js'

const MINUTE = 60_000

t.test('cluster: a worker whose clock runs ahead finalizes nothing still open and leaves the shared mark at the server clock', async (t) => {
  const redis = await startRedisServer(t)
  const env = `f${randomUUID().slice(0, 8)}`
  const hot = new RedisHotState({ connection: redis.url, env, dedupeWindowMs: 86_400_000 })
  t.teardown(async () => await hot.close())
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const bus = new MemoryBus()
  const finals: BucketEvent[] = []
  for (const resolution of RESOLUTIONS) await bus.subscribe(seriesKey('AAPL', resolution), (event) => { if (event.kind === 'final') finals.push(event) })

  await clearOfMinuteBoundary(15_000)
  const now = Date.now()
  const items: ScoredItem[] = [
    { id: 'past', ticker: 'AAPL', ts: now - 90_000, score: 0.5, label: 'positive', source: 'tiingo' },
    { id: 'open', ticker: 'AAPL', ts: now, score: 0.5, label: 'positive', source: 'tiingo' }
  ]
  let outcome = await foldWithTerm(hot, 'AAPL', items, { now })
  if (outcome.kind === 'needs-load') {
    await hot.seed(outcome.refs, [])
    outcome = await foldWithTerm(hot, 'AAPL', items, { now })
  }
  t.equal(outcome.kind, 'applied')

  // The worker's clock runs ten minutes ahead of Redis (and of the real time).
  const skewed = new Finalizer({ hot, bus, tickers: ['AAPL'], log: { warn: () => {} }, now: () => Date.now() + 10 * MINUTE })
  const report = await skewed.runOnce(Date.now() + 10 * MINUTE)
  await new Promise((resolve) => setImmediate(resolve))

  const serverMinute = Math.floor(Date.now() / MINUTE) * MINUTE
  const stillOpen = finals.filter((event) => event.bucket.start + DURATION_MS[event.bucket.resolution] > Date.now())
  t.same(stillOpen.map((event) => `${event.bucket.resolution}@${new Date(event.bucket.start).toISOString()}`), [], 'no bucket still open was published final')
  t.ok(report.to <= serverMinute, `the window ends at the server's minute, not the worker's (${new Date(report.to).toISOString()})`)
  const mark = Number(await admin.get(new RedisKeys(env).finalizedTo()))
  t.ok(mark <= serverMinute, `the shared mark stays at the server clock (${new Date(mark).toISOString()})`)
  const pastMinute = bucketStart(now - 90_000, '1m')
  t.ok(finals.some((event) => event.bucket.resolution === '1m' && event.bucket.start === pastMinute), 'buckets that did end are finalized')
})

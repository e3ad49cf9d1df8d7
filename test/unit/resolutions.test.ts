import fc from 'fast-check'
import t from 'tap'
import { bucketRefsFor } from '../../shared/timeseries/bucket.js'
import { applyRetentionScale, bucketEnd, bucketStart, DURATION_MS, isRetained, PRODUCTION_RETENTION_MS, progressPct, RESOLUTIONS, RETENTION_MS, scaledRetention, toIsoSecond, ttlSeconds } from '../../shared/timeseries/resolutions.js'

t.test('bucket starts are epoch-aligned UTC and contain their instant', async (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.constantFrom(...RESOLUTIONS), (ms, resolution) => {
    const start = bucketStart(ms, resolution)
    return start % DURATION_MS[resolution] === 0 && start <= ms && ms < bucketEnd(start, resolution)
  }), { numRuns: 2000 })
  t.pass('aligned')
})

t.test('boundaries: the last millisecond belongs to the earlier bucket, the next to the new one', async (t) => {
  for (const resolution of RESOLUTIONS) {
    const boundary = Date.UTC(2025, 11, 21) + 7 * DURATION_MS[resolution]
    const aligned = bucketStart(boundary, resolution)
    t.equal(bucketStart(aligned, resolution), aligned, `${resolution} start maps to itself`)
    t.equal(bucketStart(aligned - 1, resolution), aligned - DURATION_MS[resolution], `${resolution} previous bucket`)
  }
  t.equal(toIsoSecond(bucketStart(Date.UTC(2025, 11, 21, 10, 37, 12), '5m')), '2025-12-21T10:35:00Z')
  t.equal(toIsoSecond(bucketStart(Date.UTC(2025, 11, 21, 10, 37, 12), '3h')), '2025-12-21T09:00:00Z')
  t.equal(toIsoSecond(bucketStart(Date.UTC(2025, 11, 21, 23, 59, 59), '24h')), '2025-12-21T00:00:00Z')
})

t.test('retention decides which resolutions an item updates', async (t) => {
  const now = Date.UTC(2025, 11, 21, 12, 0, 0)
  t.equal(bucketRefsFor({ ticker: 'AAPL', ts: now }, now).length, 8, 'a fresh item updates all eight')
  const sevenHoursAgo = now - 7 * 3_600_000
  const refs = bucketRefsFor({ ticker: 'AAPL', ts: sevenHoursAgo }, now).map((r) => r.resolution)
  t.notOk(refs.includes('1m'), '1m (6 h retention) is skipped')
  t.ok(refs.includes('5m'), '5m (12 h retention) still updates')
  t.same(bucketRefsFor({ ticker: 'AAPL', ts: now - 91 * 86_400_000 }, now), [], 'older than every retention')
  t.ok(isRetained(bucketStart(now, '24h'), '24h', now))
  t.equal(ttlSeconds(0, '1m'), (60_000 + RETENTION_MS['1m']) / 1000)
})

t.test('progress through a bucket', async (t) => {
  const start = Date.UTC(2025, 11, 21, 10, 0, 0)
  t.equal(progressPct(start, '1h', start + 30 * 60_000), 50)
  t.equal(progressPct(start, '1h', start), 0)
  t.equal(progressPct(start, '1h', start + 2 * 3_600_000), 100)
})

t.test('a test retention scale divides every retention, in whole seconds, and ttl still agrees with isRetained', async (t) => {
  t.same(RETENTION_MS, PRODUCTION_RETENTION_MS, 'production retention unless a scale is applied')
  const scaled = scaledRetention(1440)
  t.equal(scaled['1m'], 15_000)
  t.equal(scaled['24h'], 90 * 60_000)
  t.equal(scaledRetention(7)['1m'], 3_086_000, 'rounded to whole seconds')
  t.throws(() => scaledRetention(0), RangeError)
  t.throws(() => scaledRetention(1.5), RangeError)
  t.teardown(() => applyRetentionScale(1))
  applyRetentionScale(7)
  const now = Date.UTC(2025, 11, 21, 12, 0, 0)
  for (const resolution of RESOLUTIONS) {
    const start = bucketStart(now - RETENTION_MS[resolution] - DURATION_MS[resolution], resolution)
    for (const at of [start, start + 1000]) {
      t.equal(isRetained(at, resolution, now), ttlSeconds(at, resolution) > Math.floor(now / 1000), `${resolution}: ttl and isRetained agree`)
    }
  }
  t.notOk(bucketRefsFor({ ticker: 'AAPL', ts: now - 2 * 3_600_000 }, now).some((r) => r.resolution === '1m'), 'a 2 h old item misses 1m at scale 7')
  applyRetentionScale(1)
  t.same(RETENTION_MS, PRODUCTION_RETENTION_MS, 'scale 1 restores production retention')
})

import { deepStrictEqual } from 'node:assert/strict'
import fc from 'fast-check'
import t from 'tap'
import { bucketToItem, itemToBucket } from '../../shared/adapters/dynamo/bucket-item.js'
import type { Bucket } from '../../shared/timeseries/bucket.js'
import { DURATION_MS, RESOLUTIONS, bucketEnd, ttlSeconds } from '../../shared/timeseries/resolutions.js'

const score = fc.double({ min: -1, max: 1, noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x))
const count = fc.nat({ max: 1_000_000 })
const ts = fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 })
const orderKey = fc.record({ ts, id: fc.string({ minLength: 1, maxLength: 128 }) })

const bucketArb: fc.Arbitrary<Bucket> = fc.record({
  ticker: fc.stringMatching(/^[A-Z][A-Z0-9.]{0,9}$/),
  resolution: fc.constantFrom(...RESOLUTIONS),
  startMs: ts,
  open: score,
  high: score,
  low: score,
  close: score,
  count: fc.integer({ min: 1, max: 1_000_000 }),
  sum: fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
  label_counts: fc.record({ positive: count, neutral: count, negative: count }),
  sources: fc.uniqueArray(fc.stringMatching(/^[a-z0-9_-]{1,32}$/), { minLength: 1, maxLength: 5 }).map((s) => s.sort()),
  first: orderKey,
  last: orderKey,
  rev: fc.integer({ min: 1, max: 2 ** 40 }),
  last_updated: ts,
  seq: fc.option(fc.nat({ max: 2 ** 50 }), { nil: undefined })
}).map(({ startMs, seq, ...rest }) => {
  const start = Math.floor(startMs / DURATION_MS[rest.resolution]) * DURATION_MS[rest.resolution]
  const bucket: Bucket = { ...rest, start }
  if (seq !== undefined) bucket.seq = seq
  // fast-check builds records without a prototype; compare against plain objects.
  return JSON.parse(JSON.stringify(bucket)) as Bucket
})

/** What DynamoDB does to an item: numbers travel as decimal strings, the rest as JSON. */
function throughWire (value: unknown): unknown {
  if (typeof value === 'number') return Number(value.toString())
  if (Array.isArray(value)) return value.map(throughWire)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, throughWire(v)]))
  }
  return value
}

t.test('a bucket survives marshal, the wire and unmarshal exactly', async (t) => {
  fc.assert(fc.property(bucketArb, fc.integer({ min: 0, max: 2_000_000_000_000 }), (bucket, now) => {
    const item = throughWire(bucketToItem(bucket, now)) as Record<string, unknown>
    deepStrictEqual(itemToBucket(item), bucket)
  }), { numRuns: 1000 })
  t.pass('1000 random buckets round-tripped')
})

t.test('the item carries the table key, the JSON bucket attributes and ttl', async (t) => {
  const start = Date.parse('2025-12-21T10:35:00Z')
  const bucket: Bucket = {
    ticker: 'AAPL',
    resolution: '5m',
    start,
    open: 0.5,
    high: 0.9,
    low: -0.2,
    close: 0.1,
    count: 4,
    sum: 1.3,
    label_counts: { positive: 2, neutral: 1, negative: 1 },
    sources: ['finnhub', 'tiingo'],
    first: { ts: start + 1000, id: 'a' },
    last: { ts: start + 200_000, id: 'd' },
    rev: 7,
    last_updated: start + 250_123
  }
  const during = bucketToItem(bucket, start + 1000)
  t.match(during, {
    PK: 'AAPL#5m',
    SK: '2025-12-21T10:35:00Z',
    timestamp: '2025-12-21T10:35:00Z',
    avg: 1.3 / 4,
    label_counts: { positive: 2, neutral: 1, negative: 1 },
    sources: ['finnhub', 'tiingo'],
    last_updated: '2025-12-21T10:39:10Z',
    last_updated_ms: start + 250_123,
    is_partial: true,
    rev: 7,
    start,
    ttl: ttlSeconds(start, '5m')
  })
  t.equal(during.ttl, (bucketEnd(start, '5m') + 12 * 3_600_000) / 1000)
  t.notOk('seq' in during, 'no seq attribute when the bucket has none')
  t.equal(bucketToItem(bucket, bucketEnd(start, '5m')).is_partial, false, 'written after its end: final')
})

t.test('a malformed item is refused, naming its key', async (t) => {
  const item = bucketToItem({
    ticker: 'MSFT',
    resolution: '1m',
    start: 0,
    open: 0,
    high: 0,
    low: 0,
    close: 0,
    count: 1,
    sum: 0,
    label_counts: { positive: 0, neutral: 1, negative: 0 },
    sources: ['x'],
    first: { ts: 0, id: 'a' },
    last: { ts: 0, id: 'a' },
    rev: 1,
    last_updated: 0
  }, 0) as unknown as Record<string, unknown>
  t.throws(() => itemToBucket({ ...item, first: 'nope' }), { name: 'BucketItemError', message: /MSFT#1m\/1970-01-01T00:00:00Z: attribute first/ })
  t.throws(() => itemToBucket({ ...item, PK: 'MSFT#2m' }), { name: 'BucketItemError' })
  t.throws(() => itemToBucket({ ...item, sum: 'NaN' }), { name: 'BucketItemError' })
})

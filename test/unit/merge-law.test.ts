import fc from 'fast-check'
import t, { type Test } from 'tap'
import { type Aggregate, MAX_SOURCES, aggregateOf, compareIds, foldAggregate, mergeAggregates, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { itemArb } from '../helpers/items.js'

/**
 * Items that can share a bucket: unique ids. Two different items with one (timestamp, id)
 * cannot reach a fold — dedupe keeps the first copy of an id — so they are outside the law.
 */
const distinctItems = (minLength: number): fc.Arbitrary<ScoredItem[]> =>
  fc.uniqueArray(itemArb(NOW), { minLength, maxLength: 40, selector: (item) => item.id })

const NOW = Date.UTC(2025, 11, 21, 10, 35, 17)

/** Sums may differ in the last bits with the order of addition (SPEC: relative 1e-9). */
function sameAggregate (t: Test, actual: Aggregate | undefined, expected: Aggregate | undefined, what: string): void {
  if (actual === undefined || expected === undefined) {
    t.equal(actual, expected, what)
    return
  }
  const { sum: a, ...restA } = actual
  const { sum: b, ...restB } = expected
  t.same(restA, restB, what)
  t.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: sums ${a} ≈ ${b}`)
}

function shuffled<T> (items: readonly T[], seed: number): T[] {
  const copy = items.slice()
  let s = seed
  for (let i = copy.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff
    const j = s % (i + 1)
    ;[copy[i], copy[j]] = [copy[j] as T, copy[i] as T]
  }
  return copy
}

t.test('any permutation of the same items gives the same aggregate', async (t) => {
  fc.assert(fc.property(distinctItems(1), fc.integer(), (items, seed) => {
    const a = foldAggregate(items)
    const b = foldAggregate(shuffled(items, seed))
    if (a === undefined || b === undefined) return false
    return a.open === b.open && a.close === b.close && a.high === b.high && a.low === b.low &&
      a.count === b.count && Math.abs(a.sum - b.sum) <= 1e-9 * Math.max(1, Math.abs(a.sum)) &&
      JSON.stringify([a.label_counts, a.sources, a.first, a.last]) === JSON.stringify([b.label_counts, b.sources, b.first, b.last])
  }), { numRuns: 300 })
  t.pass('300 runs')
})

t.test('any split into two partial aggregates merges to the whole (associativity)', async (t) => {
  fc.assert(fc.property(distinctItems(2), fc.nat(), (items, cut) => {
    const at = 1 + (cut % (items.length - 1))
    const whole = foldAggregate(items) as Aggregate
    const left = foldAggregate(items.slice(0, at)) as Aggregate
    const right = foldAggregate(items.slice(at)) as Aggregate
    const merged = mergeAggregates(right, left)
    return merged.open === whole.open && merged.close === whole.close && merged.count === whole.count &&
      Math.abs(merged.sum - whole.sum) <= 1e-9 * Math.max(1, Math.abs(whole.sum)) &&
      JSON.stringify([merged.sources, merged.label_counts, merged.high, merged.low]) === JSON.stringify([whole.sources, whole.label_counts, whole.high, whole.low])
  }), { numRuns: 300 })
  t.pass('300 runs')
})

t.test('open and close are the scores of the first and last item by (timestamp, id)', async (t) => {
  const items: ScoredItem[] = [
    { id: 'b', ticker: 'AAPL', ts: 1000, score: 0.2, label: 'positive', source: 'x' },
    { id: 'a', ticker: 'AAPL', ts: 1000, score: -0.4, label: 'negative', source: 'y' },
    { id: 'c', ticker: 'AAPL', ts: 500, score: 0.9, label: 'positive', source: 'x' },
    { id: 'a', ticker: 'AAPL', ts: 2000, score: 0.1, label: 'positive', source: 'z' }
  ]
  const agg = foldAggregate(items) as Aggregate
  t.equal(agg.open, 0.9)
  t.equal(agg.close, 0.1)
  t.equal(agg.high, 0.9)
  t.equal(agg.low, -0.4)
  t.equal(agg.count, 4)
  t.same(agg.sources, ['x', 'y', 'z'])
  t.same(agg.label_counts, { positive: 3, neutral: 0, negative: 1 })
  sameAggregate(t, mergeAggregates(aggregateOf(items[3] as ScoredItem), foldAggregate(items.slice(0, 3)) as Aggregate), agg, 'merge in another order')
})

t.test('a bucket keeps the first MAX_SOURCES sources in order, however the items are split', async (t) => {
  const sources = Array.from({ length: MAX_SOURCES * 2 + 7 }, (_, i) => `src-${String(i).padStart(3, '0')}`)
  const items: ScoredItem[] = sources.map((source, i) => ({ id: `i${i}`, ticker: 'AAPL', ts: NOW + i, score: 0.1, label: 'positive', source }))
  const whole = foldAggregate(shuffled(items, 7)) as Aggregate
  t.strictSame(whole.sources, sources.slice(0, MAX_SOURCES), 'the smallest MAX_SOURCES, sorted')
  t.equal(whole.sources_truncated, true, 'the bucket says it left sources out')
  t.equal(whole.count, items.length, 'every item still counts')
  fc.assert(fc.property(fc.integer({ min: 1, max: items.length - 1 }), fc.integer(), (cut, seed) => {
    const mixed = shuffled(items, seed)
    const merged = mergeAggregates(foldAggregate(mixed.slice(0, cut)) as Aggregate, foldAggregate(mixed.slice(cut)) as Aggregate)
    return JSON.stringify(merged.sources) === JSON.stringify(whole.sources) && merged.sources_truncated === true
  }), { numRuns: 200 })
})

t.test('sources_truncated is set exactly when the items have more than MAX_SOURCES distinct sources, however they are split', async () => {
  fc.assert(fc.property(fc.integer({ min: MAX_SOURCES - 3, max: MAX_SOURCES + 3 }), fc.integer({ min: 1, max: 4 }), fc.integer(), (distinct, copies, seed) => {
    const items: ScoredItem[] = Array.from({ length: distinct * copies }, (_, i) => ({ id: `i${i}`, ticker: 'AAPL', ts: NOW + i, score: 0.1, label: 'positive', source: `s${i % distinct}` }))
    const mixed = shuffled(items, seed)
    const cut = 1 + (Math.abs(seed) % (items.length - 1))
    const merged = mergeAggregates(foldAggregate(mixed.slice(0, cut)) as Aggregate, foldAggregate(mixed.slice(cut)) as Aggregate)
    return (merged.sources_truncated === true) === (distinct > MAX_SOURCES) && merged.sources.length === Math.min(distinct, MAX_SOURCES)
  }), { numRuns: 300 })
})

t.test('ids order by code point, as UTF-8 bytes do', async (t) => {
  fc.assert(fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
    const bytes = Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
    return Math.sign(compareIds(a, b)) === Math.sign(bytes)
  }), { numRuns: 2000 })
  t.equal(Math.sign(compareIds('\uFFFD', '\u{1F600}')), -1, 'astral sorts after the BMP')
})

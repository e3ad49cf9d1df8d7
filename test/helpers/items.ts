import fc from 'fast-check'
import { type Bucket, type ScoredItem, labelFor } from '../../shared/timeseries/bucket.js'
import type { BucketRef } from '../../shared/timeseries/keys.js'

/** Arbitrary ids, including non-ASCII and astral characters, where ordering ties matter. */
export const idArb = fc.oneof(
  fc.stringMatching(/^[a-z0-9]{1,6}$/),
  fc.constantFrom('a', 'b', 'é', '\u{1F600}', '\uFFFD', 'Z', 'a\u{10400}', 'a\uE000')
)

/** Scored items of the given tickers around `now` (some late, a few in the near future). */
export function itemArb (now: number, tickers: readonly string[] = ['AAPL', 'MSFT']): fc.Arbitrary<ScoredItem> {
  return fc.record({
    id: idArb,
    ticker: fc.constantFrom(...tickers),
    // Coarse steps make equal timestamps (ties broken by id) common.
    ts: fc.integer({ min: -3 * 3600, max: 240 }).map((s) => now + s * 1000 - (now % 1000)),
    score: fc.double({ min: -1, max: 1, noNaN: true, noDefaultInfinity: true }),
    source: fc.constantFrom('tiingo', 'finnhub', 'newsapi')
  }).map((item) => ({ ...item, label: labelFor(item.score) }))
}

/** Keeps the first copy of each `(ticker, id)`: what dedupe must leave. */
export function firstCopies (items: readonly ScoredItem[]): ScoredItem[] {
  const seen = new Set<string>()
  return items.filter((item) => {
    const key = `${item.ticker}#${item.id}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** A bucket holding one positive 0.1 item from tiingo: the fixture of tests that need any valid bucket. */
export function oneItemBucket (ref: BucketRef, item: { ts: number, id: string }, rev = 1, lastUpdated = item.ts): Bucket {
  return {
    ...ref,
    open: 0.1,
    high: 0.1,
    low: 0.1,
    close: 0.1,
    count: 1,
    sum: 0.1,
    label_counts: { positive: 1, neutral: 0, negative: 0 },
    sources: ['tiingo'],
    first: item,
    last: item,
    rev,
    last_updated: lastUpdated
  }
}

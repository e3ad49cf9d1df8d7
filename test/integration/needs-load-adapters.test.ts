import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import { Redis } from 'ioredis'
import t from 'tap'
import { MemoryArchive } from '../helpers/memory-archive.js'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import type { HotState } from '../../shared/ports/hot-state.js'
import { type Aggregate, type Bucket, type Label, type ScoredItem, bucketRefsFor } from '../../shared/timeseries/bucket.js'
import { MAX_FUTURE_MS } from '../../shared/timeseries/item.js'
import { type BucketRef, bucketId, groupByTicker } from '../../shared/timeseries/keys.js'
import { RESOLUTIONS } from '../../shared/timeseries/resolutions.js'
import { sharedRedisServer, uniqueEnv } from '../helpers/shared-services.js'
import { TERM_SPAN } from '../../shared/timeseries/revision.js'
import { expectedBuckets } from '../helpers/expected.js'
import { foldWithTerm } from '../helpers/fold-with-term.js'

const redis = new Redis((await sharedRedisServer()).url)
t.teardown(() => redis.quit())

const HOUR = 3_600_000
const DAY = 24 * HOUR
const TICKERS = ['AAPL', 'MSFT']

/**
 * Needs-load exists twice: MemoryHotState asks the archive for a bucket it does not hold
 * only when the bucket began before its horizon (its creation plus MAX_FUTURE_MS), while
 * lua/fold.lua asks for every bucket whose hash is missing. The difference is by design:
 * no item accepted before the memory hot state existed can lie in a bucket that began
 * after its horizon, so the archive holds nothing there. What must agree, for any archive
 * left by an earlier life and any batches after a restart:
 *   - below the horizon both ask for exactly the same buckets; above it only Redis asks,
 *     and the archive holds none of those;
 *   - every bucket asked for is one the batch folds into (a retained bucket of one of its
 *     items), so the other adapter could hold it;
 *   - after each `seed` of the requested refs from the archive, both fold to the same
 *     buckets, and those are the domain's fold of every item, earlier life included.
 */

/** Dyadic scores, so sums are exact whatever the order of folding. */
const score = fc.constantFrom(1, 0.5, 0.25, 0.125, 0, -0.125, -0.5, -1)
const itemArb = (prefix: string, from: number, to: number): fc.Arbitrary<ScoredItem> => fc.record({
  id: fc.integer({ min: 0, max: 40 }).map((n) => `${prefix}${n}`),
  ticker: fc.constantFrom(...TICKERS),
  ts: fc.oneof(fc.integer({ min: from, max: to }), fc.integer({ min: to - 10 * 60_000, max: to })),
  score,
  label: fc.constantFrom<Label>('positive', 'neutral', 'negative'),
  source: fc.constantFrom('tiingo', 'finnhub')
})

function sameRefs (a: readonly BucketRef[], b: readonly BucketRef[]): boolean {
  return isDeepStrictEqual(a.map(bucketId).sort(), b.map(bucketId).sort())
}

async function allBuckets (hot: HotState, now: number): Promise<Bucket[]> {
  const all: Bucket[] = []
  for (const ticker of TICKERS) {
    for (const resolution of RESOLUTIONS) all.push(...await hot.range(ticker, resolution, 0, now + DAY))
  }
  return all
}

function stateOf (bucket: Bucket): unknown {
  const { ticker, resolution, start, open, high, low, close, count, sum, label_counts: labels, sources, first, last, rev } = bucket
  // Each adapter counts in a term of its own: the counts within it must agree.
  return { ticker, resolution, start, open, high, low, close, count, sum, label_counts: labels, sources, first, last, count_in_term: rev % TERM_SPAN }
}

function aggregateOf (bucket: Bucket): Aggregate {
  const { open, high, low, close, count, sum, label_counts: labels, sources, first, last } = bucket
  return { open, high, low, close, count, sum, label_counts: labels, sources, first, last }
}

/** Folds one ticker's items into a hot state with no archive (the earlier life's own loads find nothing). */
async function foldUnarchived (hot: HotState, ticker: string, items: ScoredItem[], now: number): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const outcome = await foldWithTerm(hot, ticker, items, { now })
    if (outcome.kind === 'applied') return
    await hot.seed(outcome.refs, [])
  }
  throw new Error('buckets stayed unloaded')
}

t.test('needs-load: both hot states ask for what the archive may hold and fold to the same buckets', async (t) => {
  const seen = { onlyRedisAsked: 0, loadedFromArchive: 0, askedBoth: 0 }
  const createdAt = Date.now()
  const horizon = createdAt + MAX_FUTURE_MS
  const scenario = fc.record({
    // The earlier life: items accepted before the restart, at most MAX_FUTURE_MS ahead.
    earlier: fc.array(itemArb('p', createdAt - 3 * HOUR, createdAt + MAX_FUTURE_MS - 1), { maxLength: 30 }),
    steps: fc.array(fc.record({
      advanceMs: fc.integer({ min: 0, max: 5 * 60_000 }),
      items: fc.array(fc.record({
        item: itemArb('n', createdAt - 3 * HOUR, createdAt),
        // A live item: stamped at `now`, up to MAX_FUTURE_MS ahead, as the ingest gateway accepts.
        live: fc.boolean(),
        aheadMs: fc.integer({ min: 0, max: MAX_FUTURE_MS })
      }), { minLength: 1, maxLength: 12 })
    }), { minLength: 1, maxLength: 4 })
  })
  await fc.assert(fc.asyncProperty(scenario, async ({ earlier, steps }) => {
    const archive = new MemoryArchive()
    const before = new MemoryHotState({ dedupeWindowMs: DAY, createdAt: createdAt - DAY })
    for (const [ticker, items] of groupByTicker(earlier)) await foldUnarchived(before, ticker, items, createdAt)
    await archive.put(await before.takeDirty(Infinity))

    const memory = new MemoryHotState({ dedupeWindowMs: DAY, createdAt })
    const inRedis = new RedisHotState({ connection: redis, env: uniqueEnv('n'), dedupeWindowMs: DAY })
    let now = createdAt
    const all = [...earlier]
    for (const [s, step] of steps.entries()) {
      now += step.advanceMs
      const batch = step.items.map(({ item, live, aheadMs }) => live ? { ...item, ts: now + aheadMs } : item)
      all.push(...batch)
      for (const [ticker, items] of groupByTicker(batch)) {
        const batchRefs = new Set(items.flatMap((item) => bucketRefsFor(item, now)).map(bucketId))
        const done = { memory: false, redis: false }
        for (let round = 0; !(done.memory && done.redis); round++) {
          if (round >= 5) throw new Error(`step ${s} ${ticker}: buckets stayed unloaded`)
          const asked: { memory: BucketRef[], redis: BucketRef[] } = { memory: [], redis: [] }
          for (const [name, hot] of [['memory', memory], ['redis', inRedis]] as const) {
            if (done[name]) continue
            const outcome = await foldWithTerm(hot, ticker, items, { now })
            if (outcome.kind === 'applied') done[name] = true
            else asked[name] = outcome.refs
          }
          for (const ref of [...asked.memory, ...asked.redis]) {
            if (!batchRefs.has(bucketId(ref))) throw new Error(`step ${s} round ${round}: ${bucketId(ref)} asked for, not a bucket of the batch`)
          }
          const below = asked.redis.filter((ref) => ref.start < horizon)
          if (!sameRefs(asked.memory, below)) {
            throw new Error(`step ${s} round ${round} ${ticker}: memory asked ${JSON.stringify(asked.memory.map(bucketId))}, Redis below the horizon ${JSON.stringify(below.map(bucketId))}`)
          }
          const above = asked.redis.filter((ref) => ref.start >= horizon)
          const archivedAbove = await archive.get(above, now)
          if (archivedAbove.length > 0) throw new Error(`step ${s}: the archive holds ${JSON.stringify(archivedAbove.map(bucketId))}, above the horizon`)
          if (above.length > 0) seen.onlyRedisAsked++
          if (asked.memory.length > 0) seen.askedBoth++
          for (const [name, hot] of [['memory', memory], ['redis', inRedis]] as const) {
            if (asked[name].length === 0) continue
            const found = await archive.get(asked[name], now)
            if (found.length > 0) seen.loadedFromArchive++
            await hot.seed(asked[name], found)
          }
        }
      }
      const memoryBuckets = await allBuckets(memory, now)
      const redisBuckets = await allBuckets(inRedis, now)
      if (!isDeepStrictEqual(memoryBuckets.map(stateOf), redisBuckets.map(stateOf))) {
        throw new Error(`step ${s}: buckets differ\nmemory ${JSON.stringify(memoryBuckets.map(stateOf))}\nredis  ${JSON.stringify(redisBuckets.map(stateOf))}`)
      }
      // Buckets of the new items hold everything of the earlier life as well: nothing was lost to a missed load.
      const expected = expectedBuckets(all, now)
      for (const bucket of memoryBuckets) {
        const want = expected.get(bucketId(bucket))?.aggregate
        if (!isDeepStrictEqual(aggregateOf(bucket), want)) {
          throw new Error(`step ${s}: ${bucketId(bucket)} is ${JSON.stringify(aggregateOf(bucket))}, the domain says ${JSON.stringify(want)}`)
        }
      }
    }
  // A failure is still reported when shrinking it runs out of time.
  }), { numRuns: 40, interruptAfterTimeLimit: 20_000 })
  t.ok(seen.onlyRedisAsked > 0, `Redis alone asked for buckets above the horizon ${seen.onlyRedisAsked} times`)
  t.ok(seen.askedBoth > 0, `both asked for buckets below the horizon ${seen.askedBoth} times`)
  t.ok(seen.loadedFromArchive > 0, `a load found archived buckets ${seen.loadedFromArchive} times`)
})

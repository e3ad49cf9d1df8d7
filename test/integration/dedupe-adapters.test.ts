import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import { Redis } from 'ioredis'
import t from 'tap'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import type { HotState } from '../../shared/ports/hot-state.js'
import { type Bucket, type ScoredItem, labelFor } from '../../shared/timeseries/bucket.js'
import { dedupeSliceExpiresAt, dedupeSliceMs } from '../../shared/timeseries/dedupe.js'
import { groupByTicker } from '../../shared/timeseries/keys.js'
import { RESOLUTIONS } from '../../shared/timeseries/resolutions.js'
import { sharedRedisServer, uniqueEnv } from '../helpers/shared-services.js'
import { foldWithTerm } from '../helpers/fold-with-term.js'
import { TERM_SPAN } from '../../shared/timeseries/revision.js'

const redis = new Redis((await sharedRedisServer()).url)
t.teardown(() => redis.quit())

const TICKERS = ['AAPL', 'MSFT']
const IDS = ['a', 'b', 'c', 'd', 'e']

/**
 * Dedupe exists twice: MemoryHotState's fingerprint slices (TypeScript) and the seen
 * slices of lua/fold.lua behind RedisHotState; both take their slices from
 * shared/timeseries/dedupe.ts. For any sequence of batches at a moving `now` — copies
 * within a batch, an item resent in a later batch, the same id under two tickers, slices
 * aging out of the window — both must count the same items, and the same ones the rule
 * says: the first copy of a `(ticker, id)` counts, and a later copy is a duplicate while
 * the slice of the counted copy's fold has not passed its end plus the window.
 *
 * Each item of the universe has its own power-of-two score, so a bucket's sum names
 * exactly which items it counted.
 */

interface Step {
  /** Milliseconds the clock moves forward before this batch. */
  advanceMs: number
  /** Positions in the universe of items, in batch order (repeats are in-batch copies). */
  picks: number[]
}

function universe (start: number): ScoredItem[] {
  const items: ScoredItem[] = []
  for (const ticker of TICKERS) {
    for (const id of IDS) {
      const score = 2 ** -(items.length + 1)
      // Each item a few seconds before the first fold, so every one is retained throughout.
      items.push({ id, ticker, ts: start - 1000 * (items.length + 1), score, label: labelFor(score), source: 'tiingo' })
    }
  }
  return items
}

/** Folds one ticker's items, treating any bucket the hot state asks for as empty in the archive. */
async function foldTicker (hot: HotState, ticker: string, items: ScoredItem[], now: number): Promise<number> {
  for (let round = 0; round < 5; round++) {
    const outcome = await foldWithTerm(hot, ticker, items, { now })
    if (outcome.kind === 'applied') return outcome.duplicates
    await hot.seed(outcome.refs, [])
  }
  throw new Error(`buckets of ${ticker} stayed unloaded`)
}

async function allBuckets (hot: HotState, now: number): Promise<Bucket[]> {
  const all: Bucket[] = []
  for (const ticker of TICKERS) {
    for (const resolution of RESOLUTIONS) all.push(...await hot.range(ticker, resolution, 0, now + 86_400_000))
  }
  return all
}

function aggregateOf (bucket: Bucket): unknown {
  const { ticker, resolution, start, open, high, low, close, count, sum, label_counts: labels, sources, first, last, rev } = bucket
  // Each adapter counts in a term of its own: the counts within it must agree.
  return { ticker, resolution, start, open, high, low, close, count, sum, label_counts: labels, sources, first, last, count_in_term: rev % TERM_SPAN }
}

const stepArb = (windowMs: number): fc.Arbitrary<Step> => fc.record({
  advanceMs: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: dedupeSliceMs(windowMs) }),
    fc.integer({ min: 0, max: 2 * windowMs })
  ),
  picks: fc.array(fc.nat({ max: TICKERS.length * IDS.length - 1 }), { minLength: 1, maxLength: 8 })
})

t.test('dedupe: the memory hot state and fold.lua count the same items across batches and slices', async (t) => {
  const seen = { resentDuplicate: 0, resentCountedAgain: 0, sameIdTwoTickers: 0, inBatchCopy: 0 }
  const scenario = fc.constantFrom(60_000, 61_000, 6 * 60_000).chain((windowMs) => fc.record({
    windowMs: fc.constant(windowMs),
    // Where the first fold falls within a slice.
    offsetMs: fc.integer({ min: 0, max: dedupeSliceMs(windowMs) - 1 }),
    steps: fc.array(stepArb(windowMs), { minLength: 2, maxLength: 8 })
  }))
  await fc.assert(fc.asyncProperty(scenario, async ({ windowMs, offsetMs, steps }) => {
    // The clock only moves forward and starts at the wall clock: Redis expires a slice
    // (PEXPIREAT) by its own clock, always after the slice leaves the lookups at `now`.
    let now = Date.now() + offsetMs
    const items = universe(now)
    const memory = new MemoryHotState({ dedupeWindowMs: windowMs, createdAt: now })
    const inRedis = new RedisHotState({ connection: redis, env: uniqueEnv('d'), dedupeWindowMs: windowMs })
    /** The rule's memory: when each counted `(ticker, id)` was last counted. */
    const countedAt = new Map<number, number>()
    const countedSum = new Map<string, number>(TICKERS.map((ticker) => [ticker, 0]))
    const countedN = new Map<string, number>(TICKERS.map((ticker) => [ticker, 0]))
    const sliceMs = dedupeSliceMs(windowMs)
    for (const [b, step] of steps.entries()) {
      now += step.advanceMs
      const batch = step.picks.map((pick) => ({ ...(items[pick] as ScoredItem) }))
      // The rule, by item.
      const expectedDuplicates = new Map<string, number>(TICKERS.map((ticker) => [ticker, 0]))
      const inBatch = new Set<number>()
      for (const pick of step.picks) {
        const item = items[pick] as ScoredItem
        const last = countedAt.get(pick)
        const remembered = last !== undefined && now < dedupeSliceExpiresAt(Math.floor(last / sliceMs), windowMs)
        if (last !== undefined && now - last < windowMs && !remembered) throw new Error('the rule forgets an item within its window')
        if (last !== undefined && now - last >= windowMs + sliceMs && remembered) throw new Error('the rule keeps an item past its window and a slice')
        if (inBatch.has(pick) || remembered) {
          expectedDuplicates.set(item.ticker, (expectedDuplicates.get(item.ticker) ?? 0) + 1)
          if (inBatch.has(pick)) seen.inBatchCopy++
          else seen.resentDuplicate++
          continue
        }
        if (last !== undefined) seen.resentCountedAgain++
        const twin = items.findIndex((other) => other.id === item.id && other.ticker !== item.ticker)
        if (inBatch.has(twin) || countedAt.has(twin)) seen.sameIdTwoTickers++
        inBatch.add(pick)
        countedAt.set(pick, now)
        countedSum.set(item.ticker, (countedSum.get(item.ticker) ?? 0) + item.score)
        countedN.set(item.ticker, (countedN.get(item.ticker) ?? 0) + 1)
      }
      for (const [ticker, tickerItems] of groupByTicker(batch)) {
        const memoryDuplicates = await foldTicker(memory, ticker, tickerItems, now)
        const redisDuplicates = await foldTicker(inRedis, ticker, tickerItems, now)
        const want = expectedDuplicates.get(ticker)
        if (memoryDuplicates !== want || redisDuplicates !== want) {
          throw new Error(`batch ${b} ${ticker} at +${now - Date.now()} ms: ${memoryDuplicates} duplicates in memory, ${redisDuplicates} in Redis, ${String(want)} by the rule`)
        }
      }
      const memoryBuckets = await allBuckets(memory, now)
      const redisBuckets = await allBuckets(inRedis, now)
      if (!isDeepStrictEqual(memoryBuckets.map(aggregateOf), redisBuckets.map(aggregateOf))) {
        throw new Error(`batch ${b}: buckets differ\nmemory ${JSON.stringify(memoryBuckets.map(aggregateOf))}\nredis  ${JSON.stringify(redisBuckets.map(aggregateOf))}`)
      }
      // Every counted item is in exactly one 24h bucket of its ticker: the sums name them.
      for (const ticker of TICKERS) {
        const day = memoryBuckets.filter((bucket) => bucket.ticker === ticker && bucket.resolution === '24h')
        const n = day.reduce((total, bucket) => total + bucket.count, 0)
        const sum = day.reduce((total, bucket) => total + bucket.sum, 0)
        if (n !== countedN.get(ticker) || sum !== countedSum.get(ticker)) {
          throw new Error(`batch ${b} ${ticker}: ${n} items (sum ${sum}) counted, ${String(countedN.get(ticker))} (sum ${String(countedSum.get(ticker))}) by the rule`)
        }
      }
    }
  // A failure is still reported when shrinking it runs out of time.
  }), { numRuns: 60, interruptAfterTimeLimit: 20_000 })
  t.ok(seen.resentDuplicate > 0, `an item resent in a later batch was a duplicate ${seen.resentDuplicate} times`)
  t.ok(seen.resentCountedAgain > 0, `an item resent after its slice aged out counted again ${seen.resentCountedAgain} times`)
  t.ok(seen.sameIdTwoTickers > 0, `the same id under two tickers counted twice ${seen.sameIdTwoTickers} times`)
  t.ok(seen.inBatchCopy > 0, `a copy within a batch was a duplicate ${seen.inBatchCopy} times`)
})

import { randomUUID } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import { Redis } from 'ioredis'
import t from 'tap'
import { MemoryArchive } from '../helpers/memory-archive.js'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import type { HotState } from '../../shared/ports/hot-state.js'
import { type Aggregate, type Bucket, type Label, type ScoredItem, foldAggregate, groupByBucket } from '../../shared/timeseries/bucket.js'
import { RESOLUTIONS } from '../../shared/timeseries/resolutions.js'
import { foldBatch } from '../../services/aggregator/fold-batch.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { TERM_SPAN } from '../../shared/timeseries/revision.js'

const DAY = 86_400_000
const HOUR = 3_600_000
const TICKERS = ['AAPL', 'MSFT']
const now = Date.now()

const server = await startRedisServer(t)
const redis = new Redis(server.url)
t.teardown(() => redis.quit())

/** Ids that stress the order: accents, astral characters, U+FFFD, fullwidth, combining marks. */
const trickyId = fc.constantFrom('a', 'b', 'B', 'é', 'e\u0301', '😀', '\u{10FFFF}', '\uFFFD', 'ａ', '日本', 'a-b', 'a_b', 'Z')
// eslint-disable-next-line no-control-regex
const NO_CONTROL = /^[^\u0000-\u001f\u007f]+$/
const randomId = fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }).filter((s) => NO_CONTROL.test(s))
const timestamp = fc.oneof(
  fc.constantFrom(now, now - 1000, now - 60_000, now - HOUR, now - 7 * HOUR),
  fc.integer({ min: now - 26 * HOUR, max: now + 4 * 60_000 }),
  fc.integer({ min: now - 8 * DAY, max: now - 26 * HOUR })
)
const itemArb = fc.record({
  id: fc.oneof(trickyId, randomId),
  ticker: fc.constantFrom(...TICKERS),
  ts: timestamp,
  // Repeated scores matter: equal highs and lows across batches must not combine.
  score: fc.oneof(fc.double({ min: -1, max: 1, noNaN: true }), fc.constantFrom(0.5, -0.5, 0.25, 1, -1, 0, -0)),
  label: fc.constantFrom<Label>('positive', 'neutral', 'negative'),
  source: fc.constantFrom('tiingo', 'finnhub', 'a-b', 'a_b', 'z9')
})

/** Splits a list at random cut points into consecutive batches. */
function batches<T> (list: T[], cuts: number[]): T[][] {
  const points = [...new Set(cuts.map((c) => c % (list.length + 1)))].sort((a, b) => a - b)
  const result: T[][] = []
  let from = 0
  for (const point of [...points, list.length]) {
    if (point > from) result.push(list.slice(from, point))
    from = Math.max(from, point)
  }
  return result
}

async function foldAll (hot: HotState, parts: ScoredItem[][]): Promise<void> {
  const deps = { hot, archive: new MemoryArchive(), now: () => now }
  for (const [i, items] of parts.entries()) await foldBatch(deps, { id: `b${i}`, acceptedAt: now, items })
}

async function allBuckets (hot: HotState): Promise<Bucket[]> {
  const all: Bucket[] = []
  for (const ticker of TICKERS) {
    for (const resolution of RESOLUTIONS) all.push(...await hot.range(ticker, resolution, 0, now + DAY))
  }
  return all
}

/** The domain's answer: first copy of each (ticker, id), folded at `now`. */
function domainFold (items: ScoredItem[]): Map<string, Aggregate> {
  const seen = new Set<string>()
  const fresh = items.filter((item) => {
    const key = `${item.ticker}\u0000${item.id}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
  const result = new Map<string, Aggregate>()
  for (const group of groupByBucket(fresh, now).values()) {
    const agg = foldAggregate(group.items)
    if (agg !== undefined) result.set(`${group.ref.ticker}#${group.ref.resolution}@${group.ref.start}`, agg)
  }
  return result
}

function closeSums (a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b))
}

function withoutSum (agg: Aggregate): Omit<Aggregate, 'sum'> {
  const { sum: _sum, ...rest } = agg
  return rest
}

function aggregateOf (bucket: Bucket): Omit<Aggregate, 'sum'> {
  const { open, high, low, close, count, label_counts: labels, sources, first, last } = bucket
  return { open, high, low, close, count, label_counts: labels, sources, first, last }
}

function withoutClock (bucket: Bucket): Omit<Bucket, 'last_updated' | 'sum'> {
  const { last_updated: _clock, sum: _sum, ...rest } = bucket
  // Each adapter counts in a term of its own: the counts within it must agree.
  return { ...rest, rev: rest.rev % TERM_SPAN }
}

/**
 * Why the two adapters' buckets differ from each other or from the domain, or
 * `undefined` when they agree. `sameBatches` also requires equal revs.
 */
function difference (memory: Bucket[], inRedis: Bucket[], expected: Map<string, Aggregate>, sameBatches: boolean): string | undefined {
  if (memory.length !== inRedis.length || memory.length !== expected.size) {
    return `${memory.length} buckets in memory, ${inRedis.length} in Redis, ${expected.size} expected`
  }
  for (const [i, mem] of memory.entries()) {
    const red = inRedis[i] as Bucket
    const name = `${mem.ticker}#${mem.resolution}@${mem.start}`
    const want = expected.get(name)
    const problem =
      want === undefined
        ? 'not expected'
        : !closeSums(mem.sum, red.sum) || !closeSums(mem.sum, want.sum)
            ? 'sums differ'
            : !isDeepStrictEqual(aggregateOf(mem), withoutSum(want))
                ? 'memory differs from the domain'
                : !isDeepStrictEqual(aggregateOf(red), aggregateOf(mem))
                    ? 'Redis differs from memory'
                    : sameBatches && !isDeepStrictEqual(withoutClock(red), withoutClock(mem))
                      ? 'Redis and memory differ in rev or identity'
                      : undefined
    if (problem !== undefined) return `${name}: ${problem}\nmemory ${JSON.stringify(mem)}\nredis  ${JSON.stringify(red)}\nwant   ${JSON.stringify(want)}`
  }
  return undefined
}

function newRedisState (): RedisHotState {
  return new RedisHotState({ connection: redis, env: `p${randomUUID().slice(0, 12)}`, dedupeWindowMs: DAY })
}

t.test('the same batches give the same buckets in memory, in Redis and in the domain', async (t) => {
  await fc.assert(fc.asyncProperty(
    fc.array(itemArb, { minLength: 1, maxLength: 60 }),
    fc.array(fc.nat(), { maxLength: 8 }),
    async (items, cuts) => {
      const parts = batches(items, cuts)
      const memory = new MemoryHotState({ dedupeWindowMs: DAY })
      const inRedis = newRedisState()
      await foldAll(memory, parts)
      await foldAll(inRedis, parts)
      const problem = difference(await allBuckets(memory), await allBuckets(inRedis), domainFold(items), true)
      if (problem !== undefined) throw new Error(problem)
    }
  ), { numRuns: 50 })
  t.pass('50 random streams agree')
})

t.test('any order and any batching of the same items gives the same buckets', async (t) => {
  const stream = fc.uniqueArray(itemArb, { minLength: 1, maxLength: 50, selector: (item) => `${item.ticker}\u0000${item.id}` })
    .chain((unique) => fc.record({
      unique: fc.constant(unique),
      copies: fc.array(fc.constantFrom(...unique), { maxLength: 15 })
    }))
  await fc.assert(fc.asyncProperty(
    stream,
    fc.array(fc.nat(), { maxLength: 8 }),
    fc.array(fc.nat(), { maxLength: 8 }),
    fc.infiniteStream(fc.nat()),
    async ({ unique, copies }, cutsA, cutsB, randoms) => {
      const all = [...unique, ...copies.map((item) => ({ ...item }))]
      const shuffle = (list: ScoredItem[]): ScoredItem[] => list
        .map((item) => ({ item, key: randoms.next().value as number }))
        .sort((x, y) => x.key - y.key)
        .map(({ item }) => item)
      const memory = new MemoryHotState({ dedupeWindowMs: DAY })
      const inRedis = newRedisState()
      await foldAll(memory, batches(shuffle(all), cutsA))
      await foldAll(inRedis, batches(shuffle(all), cutsB))
      const problem = difference(await allBuckets(memory), await allBuckets(inRedis), domainFold(unique), false)
      if (problem !== undefined) throw new Error(problem)
    }
  ), { numRuns: 50 })
  t.pass('50 random permutations agree')
})

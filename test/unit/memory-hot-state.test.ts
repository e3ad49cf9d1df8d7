import fc from 'fast-check'
import t from 'tap'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import type { HotState } from '../../shared/ports/hot-state.js'
import { type Bucket, type ScoredItem, bucketRefsFor, foldAggregate, groupByBucket } from '../../shared/timeseries/bucket.js'
import { firstCopies, itemArb } from '../helpers/items.js'
import { foldWithTerm } from '../helpers/fold-with-term.js'
import { TERM_SPAN } from '../../shared/timeseries/revision.js'

const NOW = Date.UTC(2025, 11, 21, 10, 35, 17)
const DAY = 86_400_000

/** Folds like the aggregator does: load (here: nothing archived) whatever is missing, then fold. */
async function fold (hot: HotState, items: ScoredItem[], now = NOW, seq?: number): Promise<Bucket[]> {
  const byTicker = new Map<string, ScoredItem[]>()
  for (const item of items) byTicker.set(item.ticker, [...(byTicker.get(item.ticker) ?? []), item])
  const changed: Bucket[] = []
  for (const [ticker, group] of byTicker) {
    for (;;) {
      const outcome = await foldWithTerm(hot, ticker, group, seq === undefined ? { now } : { now, mark: { epoch: 'e1', seq } })
      if (outcome.kind === 'applied') {
        changed.push(...outcome.changed)
        break
      }
      await hot.seed(outcome.refs, [])
    }
  }
  return changed
}

async function state (hot: HotState, items: readonly ScoredItem[]): Promise<string> {
  const refs = items.flatMap((item) => bucketRefsFor(item, NOW))
  const buckets = await hot.get(refs)
  const unique = new Map(buckets.map((b) => [`${b.ticker}${b.resolution}${b.start}`, b]))
  return JSON.stringify([...unique.values()]
    .sort((a, b) => `${a.ticker}${a.resolution}${a.start}`.localeCompare(`${b.ticker}${b.resolution}${b.start}`))
    .map(({ rev, last_updated: lastUpdated, sum, ...rest }) => ({ ...rest, sum: Math.round(sum * 1e9) })))
}

t.test('batches of any split and order, with duplicates, give the fold of the first copies', async (t) => {
  await fc.assert(fc.asyncProperty(
    fc.array(itemArb(NOW), { minLength: 1, maxLength: 60 }),
    fc.array(fc.nat({ max: 59 }), { maxLength: 5 }),
    async (items, cuts) => {
      const whole = new MemoryHotState({ dedupeWindowMs: DAY })
      await fold(whole, items)
      const split = new MemoryHotState({ dedupeWindowMs: DAY })
      const points = [...new Set(cuts.map((c) => c % items.length))].sort((a, b) => a - b)
      let from = 0
      for (const point of [...points, items.length]) {
        await fold(split, items.slice(from, point))
        from = point
      }
      // Replaying everything again changes nothing: each (ticker, id) counts once.
      await fold(split, items)
      if (await state(whole, items) !== await state(split, items)) return false
      const expected = firstCopies(items)
      for (const { ref, items: bucketItems } of groupByBucket(expected, NOW).values()) {
        const [bucket] = await whole.get([ref])
        const agg = foldAggregate(bucketItems)
        if (bucket === undefined || agg === undefined) return false
        if (bucket.count !== agg.count || bucket.open !== agg.open || bucket.close !== agg.close) return false
      }
      return true
    }
  ), { numRuns: 150 })
  t.pass('150 runs')
})

t.test('a fold that finds unloaded buckets changes nothing and names them', async (t) => {
  const hot = new MemoryHotState({ dedupeWindowMs: DAY })
  const item: ScoredItem = { id: 'x', ticker: 'AAPL', ts: NOW, score: 0.3, label: 'positive', source: 'tiingo' }
  const first = await foldWithTerm(hot, 'AAPL', [item], { now: NOW })
  t.equal(first.kind, 'needs-load')
  if (first.kind === 'needs-load') t.equal(first.refs.length, 8)
  t.equal(await hot.dirtyCount(), 0)
  const archived: Bucket = { ticker: 'AAPL', resolution: '1m', start: NOW - (NOW % 60_000), open: 0.1, high: 0.1, low: 0.1, close: 0.1, count: 5, sum: 0.5, label_counts: { positive: 5, neutral: 0, negative: 0 }, sources: ['finnhub'], first: { ts: NOW - 1000, id: 'a' }, last: { ts: NOW - 1000, id: 'a' }, rev: 7, last_updated: NOW - 500 }
  if (first.kind === 'needs-load') await hot.seed(first.refs, [archived])
  const second = await foldWithTerm(hot, 'AAPL', [item], { now: NOW })
  t.equal(second.kind, 'applied')
  const [oneMinute] = await hot.get([archived])
  t.equal(oneMinute?.count, 6, 'the archived totals are kept, never replaced by smaller ones')
  t.ok((oneMinute?.rev ?? 0) > 7 && (oneMinute?.rev ?? 0) % TERM_SPAN === 1, 'the first change in this state\'s term, above the archived position')
  t.equal(await hot.dirtyCount(), 8)
})

t.test('buckets that start after the hot state could have held anything need no archive load', async (t) => {
  // Created at NOW: an item accepted before then was at most MAX_FUTURE_MS ahead of it.
  const hot = new MemoryHotState({ dedupeWindowMs: DAY, createdAt: NOW })
  const at = (ts: number, id: string): ScoredItem => ({ id, ticker: 'AAPL', ts, score: 0.3, label: 'positive', source: 'tiingo' })
  const later = NOW + 2 * DAY
  const fresh = await foldWithTerm(hot, 'AAPL', [at(later, 'new')], { now: later })
  t.equal(fresh.kind, 'applied', 'every bucket of a later item starts after the horizon: folded at once')
  if (fresh.kind === 'applied') t.equal(fresh.changed.length, 8)
  const soon = NOW + 10 * 60_000
  const edge = await foldWithTerm(hot, 'AAPL', [at(soon, 'edge')], { now: soon })
  t.equal(edge.kind, 'needs-load', 'a bucket that began before the horizon may hold earlier items: loaded')
  if (edge.kind === 'needs-load') {
    t.same(edge.refs.map((ref) => ref.resolution), ['10m', '1h', '3h', '6h', '12h', '24h'], 'only those: 1m and 5m began after it')
  }
})

t.test('a replayed batch sequence is skipped per bucket; dirty marks follow revs', async (t) => {
  const hot = new MemoryHotState({ dedupeWindowMs: DAY })
  const item: ScoredItem = { id: 'x', ticker: 'AAPL', ts: NOW, score: 0.3, label: 'positive', source: 'tiingo' }
  const changed = await fold(hot, [item], NOW, 5)
  t.equal(changed.length, 8)
  t.ok(changed.every((b) => b.seq === 5))
  const fresh = new MemoryHotState({ dedupeWindowMs: DAY })
  const first = await foldWithTerm(fresh, 'AAPL', [item], { now: NOW, mark: { epoch: 'e1', seq: 5 } })
  if (first.kind === 'needs-load') await fresh.seed(first.refs, changed)
  const replay = await foldWithTerm(fresh, 'AAPL', [item], { now: NOW, mark: { epoch: 'e1', seq: 5 } })
  t.same(replay.kind === 'applied' && replay.changed, [], 'buckets that hold seq 5 already are not changed')
  const dirty = await hot.takeDirty(100)
  await fold(hot, [{ ...item, id: 'y' }], NOW, 6)
  await hot.markClean(dirty)
  t.equal(await hot.dirtyCount(), 8, 'buckets changed after the flush read stay dirty')
})

t.test('write-behind side: parked buckets wait, clean means the archive holds that rev or newer, cadence holds back a recent write', async (t) => {
  const hot = new MemoryHotState({ dedupeWindowMs: DAY })
  // Real time: parking and cadence are counted on the clock; clear of a minute's end, so no
  // bucket ends while the test runs.
  while (Date.now() % 60_000 > 55_000) await new Promise((resolve) => setTimeout(resolve, 100))
  const now = Date.now()
  const item = (id: string, ts: number): ScoredItem => ({ id, ticker: 'AAPL', ts, score: 0.5, label: 'positive', source: 'tiingo' })
  const past = now - 20 * 60_000
  const changed = await fold(hot, [item('a', now), item('p', past)], now)
  const dirty = await hot.takeDirty(100)
  t.equal(dirty.length, changed.length)

  await hot.release(dirty.slice(0, 1), 60_000)
  t.equal((await hot.takeDirty(100)).length, dirty.length - 1, 'a parked bucket is not handed out before its time')
  await hot.release(dirty.slice(0, 1))
  t.equal((await hot.takeDirty(100)).length, dirty.length, 'handed back without a wait, it is due again')

  const [first] = dirty as [Bucket]
  await hot.markClean([{ ...first, rev: first.rev - 1 }])
  t.equal(await hot.dirtyCount(), dirty.length, 'an older rev written leaves the newer state dirty')
  await hot.markClean(dirty)
  t.equal(await hot.dirtyCount(), 0)

  // Written just now, open or already ended when written: a cadence holds every one back.
  const again = await fold(hot, [item('b', now), item('q', past)], now)
  const hour = 60 * 60_000
  const cadence = { '1m': hour, '5m': hour, '10m': hour, '1h': hour, '3h': hour, '6h': hour, '12h': hour, '24h': hour }
  t.strictSame(await hot.takeDirty(100, cadence), [], 'with a cadence none is due')
  t.equal((await hot.takeDirty(100)).length, again.length, 'without one all are')
})

t.test('a sequence of another journal epoch never skips a batch', async (t) => {
  const item: ScoredItem = { id: 'x', ticker: 'AAPL', ts: NOW, score: 0.3, label: 'positive', source: 'tiingo' }
  const archived = await fold(new MemoryHotState({ dedupeWindowMs: DAY }), [item], NOW, 900)
  const hot = new MemoryHotState({ dedupeWindowMs: DAY })
  const mark = { epoch: 'e2', seq: 1 }
  const first = await foldWithTerm(hot, 'AAPL', [{ ...item, id: 'new' }], { now: NOW, mark })
  if (first.kind === 'needs-load') await hot.seed(first.refs, archived)
  const applied = await foldWithTerm(hot, 'AAPL', [{ ...item, id: 'new' }], { now: NOW, mark })
  t.equal(applied.kind === 'applied' && applied.changed.length, 8, 'buckets at seq 900 of epoch e1 take seq 1 of epoch e2')
  const buckets = applied.kind === 'applied' ? applied.changed : []
  t.ok(buckets.every((b) => b.count === 2 && b.seq === 1 && b.epoch === 'e2'), 'counted, and marked with the new epoch')
  const replay = await foldWithTerm(hot, 'AAPL', [{ ...item, id: 'again' }], { now: NOW, mark })
  t.same(replay.kind === 'applied' && replay.changed, [], 'a replay of e2 seq 1 is still skipped')
})

t.test('the journal low-water mark: a batch counts as durable once every bucket it changed is written, a bucket changed during its write holds it back', async (t) => {
  const hot = new MemoryHotState({ dedupeWindowMs: DAY })
  const item = (id: string): ScoredItem => ({ id, ticker: 'AAPL', ts: NOW, score: 0.3, label: 'positive', source: 'tiingo' })
  await fold(hot, [item('a')], NOW, 1)
  t.equal(hot.durableThrough(1), 0, 'batch 1 folded, nothing written')
  await hot.markClean(await hot.takeDirty(100))
  t.equal(hot.durableThrough(1), 1, 'batch 1 written')

  await fold(hot, [item('b')], NOW, 2)
  const taken = await hot.takeDirty(100)
  // Batch 3 changes the same buckets while batch 2's states are being written.
  await fold(hot, [item('c')], NOW, 3)
  await hot.markClean(taken)
  t.equal(await hot.dirtyCount(), 8, 'the buckets stay dirty for batch 3')
  t.equal(hot.durableThrough(3), 2, 'batch 2 is durable, batch 3 is not')
  await hot.markClean(await hot.takeDirty(100))
  t.equal(hot.durableThrough(3), 3, 'batch 3 written')

  t.same(hot.unsavedSeen(2).map((entry) => entry.seq), [1, 2], 'fingerprints of batches 1 and 2 wait to be saved')
  hot.savedSeen(2)
  t.same(hot.unsavedSeen(3).map((entry) => entry.seq), [3], 'once saved, only batch 3 is left')

  const restored = new MemoryHotState({ dedupeWindowMs: DAY })
  for (const entry of hot.unsavedSeen(3)) restored.restoreSeen(entry.slice, entry.fingerprints)
  let folded = await foldWithTerm(restored, 'AAPL', [item('c'), item('d')], { now: NOW })
  if (folded.kind === 'needs-load') {
    await restored.seed(folded.refs, [])
    folded = await foldWithTerm(restored, 'AAPL', [item('c'), item('d')], { now: NOW })
  }
  t.equal(folded.kind === 'applied' && folded.duplicates, 1, 'a restored fingerprint makes its item a duplicate')
})

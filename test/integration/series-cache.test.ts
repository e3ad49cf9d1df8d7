import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { MemoryArchive } from '../helpers/memory-archive.js'
import type { BucketEvent } from '../../shared/ports/bus.js'
import { createDynamoClients } from '../../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../../shared/adapters/dynamo/dynamo-archive.js'
import { MemoryBus } from '../../shared/adapters/memory/memory-bus.js'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import { type Bucket, labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { bucketStart } from '../../shared/timeseries/resolutions.js'
import { SeriesCache } from '../../services/gateway/series-cache.js'
import { freePort } from '../helpers/free-port.js'
import { oneItemBucket } from '../helpers/items.js'
import { foldWithTerm } from '../helpers/fold-with-term.js'

t.test('with the archive unreachable, history serves what the hot state holds and retries the archive', async (t) => {
  const port = await freePort()
  const { doc, client } = createDynamoClients({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}` })
  t.teardown(() => client.destroy())
  const archive = new DynamoArchive({ client: doc, tableName: 'nowhere', maxAttempts: 1 })
  const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000 })
  const now = Date.now()
  const item: ScoredItem = { id: 'x', ticker: 'AAPL', ts: now, score: 0.4, label: labelFor(0.4), source: 'tiingo' }
  const first = await foldWithTerm(hot, 'AAPL', [item], { now })
  if (first.kind === 'needs-load') await hot.seed(first.refs, [])
  await foldWithTerm(hot, 'AAPL', [item], { now })
  const errors: unknown[] = []
  const cache = new SeriesCache({ hot, archive, bus: new MemoryBus(), now: () => now, onError: (err) => errors.push(err) })

  const view = await cache.read('AAPL', '1m')
  t.equal(view.buckets.length, 1, 'the recent bucket from the hot state is served')
  t.equal(view.buckets[0]?.start, bucketStart(now, '1m'))
  t.equal(view.hit, false)
  t.ok(errors.length > 0, 'the archive failure is reported')
  await cache.read('AAPL', '1m')
  t.equal(cache.loads, 2, 'an incomplete load is retried on the next read')
  await cache.close()
})

/** Folds items into a memory hot state as a worker would (seeding from an empty archive). */
async function fold (hot: MemoryHotState, items: ScoredItem[], now: number): Promise<Bucket[]> {
  const ticker = (items[0] as ScoredItem).ticker
  let outcome = await foldWithTerm(hot, ticker, items, { now })
  if (outcome.kind === 'needs-load') {
    await hot.seed(outcome.refs, [])
    outcome = await foldWithTerm(hot, ticker, items, { now })
  }
  if (outcome.kind !== 'applied') throw new Error('fold did not complete')
  return outcome.changed
}

function scored (id: string, ticker: string, ts: number, score = 0.4): ScoredItem {
  return { id, ticker, ts, score, label: labelFor(score), source: 'tiingo' }
}

async function until (check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

t.test('the cache and its watchers keep the higher rev: an older state is never passed on', async (t) => {
  const now = Date.now()
  const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000 })
  const bus = new MemoryBus()
  const cache = new SeriesCache({ hot, archive: new MemoryArchive(), bus, now: () => now })
  t.teardown(() => cache.close())
  const heard: BucketEvent[] = []
  await cache.watch('AAPL', '1m', (event) => heard.push(event))
  const [one] = (await fold(hot, [scored('a', 'AAPL', now)], now)).filter((b) => b.resolution === '1m')
  const [two] = (await fold(hot, [scored('b', 'AAPL', now)], now)).filter((b) => b.resolution === '1m')
  if (one === undefined || two === undefined) throw new Error('not folded')
  // Two workers publishing out of order: the newer state arrives first.
  await bus.publish([{ kind: 'change', bucket: two }, { kind: 'change', bucket: one }])
  await until(() => heard.length > 0, 'the newer state')
  await sleep(50)
  t.same(heard.map((e) => e.bucket.rev), [two.rev], 'the older state was not passed on')
  t.equal(cache.peek('AAPL', '1m', two.start)?.rev, two.rev, 'the cache holds the newer state')
  await bus.publish([{ kind: 'final', bucket: two }])
  await until(() => heard.length === 2, 'the final event of the same rev')
  t.equal(heard[1]?.kind, 'final', 'a final event of the same rev still reaches the watchers')
})

t.test('a resync passes on every state the bus lost, and a reloaded higher rev replaces the older one', async (t) => {
  const now = Date.now()
  const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000 })
  const bus = new MemoryBus()
  const cache = new SeriesCache({ hot, archive: new MemoryArchive(), bus, now: () => now })
  t.teardown(() => cache.close())
  await fold(hot, [scored('a', 'AAPL', now - 120_000)], now)
  const first = await cache.read('AAPL', '1m')
  t.equal(first.buckets.length, 1)
  const heard: BucketEvent[] = []
  await cache.watch('AAPL', '1m', (event) => heard.push(event))
  // Folded while the bus was down: nothing was published.
  const changed = (await fold(hot, [scored('b', 'AAPL', now - 120_000), scored('c', 'AAPL', now)], now)).filter((b) => b.resolution === '1m')
  await cache.resync()
  t.same(heard.map((e) => [e.bucket.start, e.bucket.rev]).sort(), changed.map((b) => [b.start, b.rev]).sort(), 'each lost state reached the watchers once')
  for (const bucket of changed) t.equal(cache.peek('AAPL', '1m', bucket.start)?.rev, bucket.rev, 'the cache holds the reloaded rev')
  t.equal((await cache.read('AAPL', '1m')).buckets.find((b) => b.start === bucketStart(now - 120_000, '1m'))?.count, 2, 'reads see the reloaded bucket')
  heard.length = 0
  await cache.resync()
  t.same(heard, [], 'a resync with nothing lost sends nothing')
  t.equal(cache.resyncs, 2)
})

t.test('a bus subscription is released a linger after its last watcher leaves, and kept when a watcher returns', async (t) => {
  const now = Date.now()
  const bus = new MemoryBus()
  const cache = new SeriesCache({ hot: new MemoryHotState({ dedupeWindowMs: 86_400_000 }), archive: new MemoryArchive(), bus, now: () => now, lingerMs: 100 })
  t.teardown(() => cache.close())
  const unwatchA = await cache.watch('AAPL', '1m', () => {})
  const unwatchB = await cache.watch('MSFT', '1m', () => {})
  t.equal(bus.channelCount, 2)
  unwatchA()
  unwatchB()
  const again = await cache.watch('MSFT', '1m', () => {})
  await until(() => bus.channelCount === 1, 'the linger to release AAPL')
  await sleep(200)
  t.equal(bus.channelCount, 1, 'MSFT, watched again within the linger, stays subscribed')
  t.equal(cache.subscriptions, 1)
  again()
  await until(() => bus.channelCount === 0, 'the linger to release MSFT')
  t.equal(cache.size, 0, 'nothing is held for series nobody watches')
})

t.test('the cache stays within its bucket budget; an evicted series reloads on its next read', async (t) => {
  const now = Date.now()
  const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000 })
  const tickers = Array.from({ length: 12 }, (_, i) => `T${i}`)
  for (const ticker of tickers) {
    await fold(hot, Array.from({ length: 200 }, (_, i) => scored(`${ticker}-${i}`, ticker, now - i * 60_000)), now)
  }
  const cache = new SeriesCache({ hot, archive: new MemoryArchive(), bus: new MemoryBus(), now: () => now, maxBuckets: 1000 })
  t.teardown(() => cache.close())
  for (const ticker of tickers) t.equal((await cache.read(ticker, '1m')).buckets.length, 200, `${ticker}: the whole window is served`)
  t.ok(cache.bucketCount <= 1000, `within the budget (${cache.bucketCount} buckets)`)
  t.ok(cache.evictions >= 7, `older windows were evicted (${cache.evictions})`)
  const loads = cache.loads
  const again = await cache.read('T0', '1m')
  t.equal(again.buckets.length, 200, 'an evicted series is served in full')
  t.equal(again.hit, false)
  t.equal(cache.loads, loads + 1, 'by loading it again')
})

t.test('a series watched but never read keeps only its retained buckets', async (t) => {
  let now = Date.now()
  const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000 })
  const bus = new MemoryBus()
  const cache = new SeriesCache({ hot, archive: new MemoryArchive(), bus, now: () => now })
  t.teardown(() => cache.close())
  await cache.watch('AAPL', '1m', () => {})
  // Ten hours of 1m buckets arrive on the bus; 1m retention is six hours.
  const start = bucketStart(now, '1m')
  for (let i = 0; i < 600; i++) {
    now = start + i * 60_000
    const bucket = oneItemBucket({ ticker: 'AAPL', resolution: '1m', start: now }, { ts: now, id: 'a' })
    await bus.publish([{ kind: 'change', bucket }])
    await sleep(0)
  }
  t.ok(cache.bucketCount <= 362, `pruned to the retained window (${cache.bucketCount} buckets)`)
  t.ok(cache.bucketCount >= 355, 'and keeps that window')
})

t.test('events that come during the first load wait for it: they carry the position it vouches for, never 0', async (t) => {
  const now = Date.now()
  const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000 })
  const bus = new MemoryBus()
  let openGate = (): void => {}
  const gate = new Promise<void>((resolve) => { openGate = resolve })
  const archive = new MemoryArchive()
  const range = archive.range.bind(archive)
  archive.range = async (...args) => { await gate; return await range(...args) }
  const cache = new SeriesCache({ hot, archive, bus, now: () => now })
  t.teardown(() => cache.close())
  const [before] = (await fold(hot, [scored('a', 'AAPL', now - 120_000)], now)).filter((b) => b.resolution === '1m')
  const heard: Array<{ rev: number, position: number }> = []
  await cache.watch('AAPL', '1m', (event, position) => heard.push({ rev: event.bucket.rev, position }))
  // The first load is under way (the archive holds it); a new state arrives on the bus.
  const [during] = (await fold(hot, [scored('b', 'AAPL', now)], now)).filter((b) => b.resolution === '1m')
  if (before === undefined || during === undefined) throw new Error('not folded')
  await bus.publish([{ kind: 'change', bucket: during }])
  await sleep(50)
  t.same(heard, [], 'nothing is passed on before the load vouches for a position')
  openGate()
  await until(() => heard.length === 1, 'the event after the load')
  t.equal(heard[0]?.rev, during.rev)
  t.ok((heard[0]?.position ?? 0) >= during.rev - 1, `the event carries a position (${heard[0]?.position}), at least the state before its own`)
})

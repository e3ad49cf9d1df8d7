import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { MemoryBus } from '../../shared/adapters/memory/memory-bus.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import type { BucketEvent } from '../../shared/ports/bus.js'
import { TERM_SPAN, termOf } from '../../shared/timeseries/revision.js'
import { type BucketRef, bucketId, seriesKey } from '../../shared/timeseries/keys.js'
import { DURATION_MS, RESOLUTIONS, bucketStart } from '../../shared/timeseries/resolutions.js'
import { Finalizer } from '../../services/aggregator/finalizer.js'
import { oneItemBucket } from '../helpers/items.js'
import { item, startWriteBehindServices, until } from '../helpers/write-behind-workers.js'

// A long file: on a loaded machine it outlasts tap's default per-file timeout.
t.setTimeout(300_000)

/** Several write-behinds (and finalizers) of one cluster: one real Redis, one dynalite table. */

const { admin, worker, newCluster } = await startWriteBehindServices(t)
const quiet = { warn: () => {}, debug: () => {} }

/** A time clear of a minute boundary, so every test item lands in the same 1m bucket. */
async function midMinute (): Promise<number> {
  for (;;) {
    const second = Date.now() % 60_000
    if (second > 3000 && second < 50_000) return Date.now()
    await sleep(250)
  }
}

t.test('a flusher held past its lease cannot overwrite the newer rev another flusher wrote', async (t) => {
  const { env, table, keys } = await newCluster()
  const a = worker(t, env, table, { flushLeaseMs: 1000 })
  const b = worker(t, env, table, { flushLeaseMs: 1000 })
  const now = await midMinute()
  const first = [item('AAPL', now - 1000, 0.5), item('AAPL', now - 2000, -0.5, 'finnhub')]
  await a.fold(first)
  const dirty = keys.dirty('AAPL')
  const eligible = async () => await admin.zcount(dirty, '-inf', String(Date.now()))
  t.equal(await eligible(), 8, 'eight buckets dirty at rev 1')

  // A takes the eight buckets at rev 1 and is held in its archive write past its lease,
  // until B has written.
  let release = (): void => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  const aPut = a.archive.put.bind(a.archive)
  let holding = 0
  a.archive.put = async (buckets) => {
    holding++
    await held
    return await aPut(buckets)
  }
  t.teardown(() => release())
  let aDone = false
  const aFlush = a.writeBehind.flushNow().finally(() => { aDone = true })
  await until(t, 'A holds the leases', async () => await eligible() === 0)
  await until(t, 'A\'s leases ran out', async () => await eligible() === 8)
  t.equal(holding, 1, 'A is held in its archive write')

  // Meanwhile the buckets change, and B writes the newer state.
  const second = [item('AAPL', now - 500, 0.9)]
  t.equal((await b.fold(second)).changed.length, 8)
  const bFlush = await b.writeBehind.flushNow()
  t.equal(bFlush.written, 8, 'B wrote rev 2')
  t.notOk(aDone, 'A is still held: its stale write lands last')
  release()
  const aResult = await aFlush
  t.equal(aResult.failed, false)
  t.equal(a.writeBehind.stats.bucketsSuperseded, 8, 'the archive refused A\'s older states')

  const refs: BucketRef[] = RESOLUTIONS.map((resolution) => ({ ticker: 'AAPL', resolution, start: bucketStart(now - 1000, resolution) }))
  const stored = await b.archive.get(refs, Date.now())
  t.equal(stored.length, 8)
  const newest = (await b.hot.get(refs))[0]?.rev ?? 0
  t.equal(newest % TERM_SPAN, 2, 'the second change of the ticker')
  t.ok(stored.every((bucket) => bucket.rev === newest && bucket.count === 3), 'the archive holds the newest rev of every bucket')
  t.ok((await b.hot.get(refs)).every((bucket) => bucket.rev === newest), 'as the hot state does')
  t.equal(await b.hot.dirtyCount(), 0, 'nothing newer waits unwritten')

  // Redis loses everything; the next fold reloads from the archive and nothing is lost.
  await admin.flushall()
  const third = [item('AAPL', now - 200, 0.1)]
  const reloaded = await b.fold(third)
  t.equal(reloaded.loaded, 8, 'reloaded from the archive')
  const renewed = reloaded.changed[0]?.rev ?? 0
  t.ok(termOf(renewed) > termOf(newest) && renewed % TERM_SPAN === 1, 'the emptied Redis counts in a new term')
  t.ok(reloaded.changed.every((bucket) => bucket.count === 4 && bucket.rev === renewed), 'every bucket counts all four items, at the new position')
  t.equal((await b.writeBehind.flushNow()).written, 8)
  const final = await a.archive.get(refs, Date.now())
  t.ok(final.length === 8 && final.every((bucket) => bucket.count === 4 && bucket.rev === renewed), 'and so does the archive')
})

t.test('after Redis is emptied a reloaded bucket takes a position above every lost one', async (t) => {
  const { env, table } = await newCluster()
  const w = worker(t, env, table)
  const published = new Map<string, number[]>()
  for (const resolution of RESOLUTIONS) {
    await w.bus.subscribe(seriesKey('MSFT', resolution), (event: BucketEvent) => {
      const id = bucketId(event.bucket)
      published.set(id, [...published.get(id) ?? [], event.bucket.rev])
    })
  }
  const now = await midMinute()
  // Rev 3 reaches clients but is never written: Redis loses it before the next flush.
  for (let round = 0; round < 3; round++) {
    await w.fold([item('MSFT', now - 1000 - round)])
    if (round < 2) await w.writeBehind.flushNow()
  }
  await admin.flushall()
  const after = await w.fold([item('MSFT', now - 900)])
  t.equal(after.loaded, 8)
  await until(t, 'the four states of eight buckets to arrive', async () => [...published.values()].reduce((sum, revs) => sum + revs.length, 0) >= 32)
  t.equal(published.size, 8)
  for (const [id, revs] of published) {
    const first = termOf(revs[0] ?? 0)
    t.strictSame(revs.slice(0, 3), [1, 2, 3].map((count) => first * TERM_SPAN + count), `${id}: three changes in the first term`)
    t.ok(revs.length === 4 && termOf(revs[3] ?? 0) > first && (revs[3] ?? 0) % TERM_SPAN === 1, `${id}: the archived state of the second change continues in a new term, above the lost third clients hold`)
  }
  t.ok(after.changed.every((bucket) => bucket.count === 3), 'the archived state plus the new item')
})

t.test('a bucket the archive always refuses is parked; every other bucket keeps flowing', async (t) => {
  const { env, table } = await newCluster()
  const w = worker(t, env, table, { roundSize: 4, parkBaseMs: 3000 })
  const now = await midMinute()
  // The oldest dirty bucket, and one DynamoDB can never store: over the 400 KB item limit.
  const poisonRef: BucketRef = { ticker: 'TSLA', resolution: '1m', start: bucketStart(now, '1m') }
  const poison = oneItemBucket(poisonRef, { ts: now - 100, id: 'x'.repeat(410_000) }, 1, now)
  await w.hot.seed([poisonRef], [poison])
  await w.hot.markDirty([poisonRef])
  await sleep(5)
  await w.fold(['AAPL', 'MSFT', 'NVDA'].map((ticker) => item(ticker, now - 1000)))
  t.equal(await w.hot.dirtyCount(), 25)

  const first = await w.writeBehind.flushNow()
  t.equal(first.written, 24, 'all 24 other buckets were written')
  t.equal(first.backlog, 1, 'the refused one stays dirty')
  t.equal(w.writeBehind.stats.bucketsParked, 1)
  t.equal(w.archive.stats.rejected, 1)

  await w.fold(['AAPL', 'MSFT'].map((ticker) => item(ticker, now - 800)))
  const second = await w.writeBehind.flushNow()
  t.equal(second.written, 16, 'new changes are written while the refused bucket waits')
  t.equal(w.archive.stats.rejected, 1, 'the parked bucket was not retried at once')
  await until(t, 'the parked bucket is retried after its wait', async () => {
    await w.writeBehind.flushNow()
    return w.archive.stats.rejected >= 2
  })
  t.equal(w.writeBehind.stats.bucketsParked, 2, 'and parked again, for longer')
  t.equal(await w.hot.dirtyCount(), 1)
})

t.test('two finalizers on one Redis publish each ended bucket final exactly once', async (t) => {
  const { env, table } = await newCluster()
  const a = worker(t, env, table)
  const b = worker(t, env, table)
  const finals: string[] = []
  const bus = new MemoryBus()
  for (const resolution of RESOLUTIONS) {
    await bus.subscribe(seriesKey('AAPL', resolution), (event: BucketEvent) => {
      if (event.kind === 'final') finals.push(bucketId(event.bucket))
    })
  }
  const finalizer = (hot: RedisHotState) => new Finalizer({ hot, bus, tickers: ['AAPL', 'MSFT'], log: quiet })
  const fa = finalizer(a.hot)
  const fb = finalizer(b.hot)
  // A past 10-minute window with an item in every minute; the finalizers run as if during it.
  const base = bucketStart(Date.now(), '10m') - 10 * 60_000
  const items = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((m) => item('AAPL', base + m * 60_000 + 1000))
  await a.fold(items)
  const minute = (m: number) => base + m * 60_000 + 100
  // The first run looks back two minutes: every bucket ending in (minute 3, minute 10].
  const expected = new Set<string>()
  for (const it of items) {
    for (const resolution of RESOLUTIONS) {
      const start = bucketStart(it.ts, resolution)
      const end = start + DURATION_MS[resolution]
      if (end > base + 3 * 60_000 && end <= base + 10 * 60_000) expected.add(bucketId({ ticker: 'AAPL', resolution, start }))
    }
  }

  // Both run the job for the same minutes, at once; then B pauses for a while and comes back.
  await Promise.all([fa.runOnce(minute(5)), fb.runOnce(minute(5))])
  await Promise.all([fa.runOnce(minute(6)), fb.runOnce(minute(6))])
  for (let m = 7; m <= 9; m++) await fa.runOnce(minute(m))
  await fb.runOnce(minute(10))
  await Promise.all([fa.runOnce(minute(10)), fb.runOnce(minute(10))])
  await sleep(10)

  const counts = new Map<string, number>()
  for (const id of finals) counts.set(id, (counts.get(id) ?? 0) + 1)
  const twice = [...counts].filter(([, n]) => n > 1)
  t.strictSame(twice, [], 'no bucket was published final twice')
  t.strictSame([...counts.keys()].sort(), [...expected].sort(), 'and every ended bucket was published')
})

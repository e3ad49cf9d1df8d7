import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { createDynamoClients } from '../../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../../shared/adapters/dynamo/dynamo-archive.js'
import { startDynalite } from '../../shared/adapters/dynamo/embedded-dynamo.js'
import { ensureTable, tableName } from '../../shared/adapters/dynamo/table.js'
import { MemoryBus } from '../../shared/adapters/memory/memory-bus.js'
import { RedisKeys } from '../../shared/adapters/redis/keys.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import { armFaults } from '../../shared/fault-points.js'
import type { BucketEvent } from '../../shared/ports/index.js'
import {
  type BucketRef, type ScoredItem, DURATION_MS, RESOLUTIONS, bucketId, bucketStart, labelFor, seriesKey, RELOAD_REV_GAP
} from '../../shared/timeseries/index.js'
import { foldBatch } from '../../services/aggregator/fold-batch.js'
import { Finalizer } from '../../services/aggregator/finalizer.js'
import { WriteBehind } from '../../services/aggregator/write-behind.js'
import { oneItemBucket } from '../helpers/items.js'
import { startRedisServer } from '../helpers/redis-server.js'

/** Several write-behinds (and finalizers) of one cluster: one real Redis, one dynalite table. */

const redisServer = await startRedisServer(t)
const dynalite = await startDynalite()
t.teardown(dynalite.close)
const dynamo = createDynamoClients({ region: 'us-east-1', endpoint: dynalite.endpoint })
t.teardown(() => dynamo.client.destroy())
const admin = new Redis(redisServer.url)
t.teardown(() => admin.quit())

const quiet = { warn: () => {}, debug: () => {} }
let ids = 0

function item (ticker: string, ts: number, score = 0.25, source = 'tiingo'): ScoredItem {
  return { id: `i${ids++}`, ticker, ts, score, label: labelFor(score), source }
}

/** Waits for a condition, polling; fails the test if it never holds. */
async function until (t: Test, what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return
    await sleep(25)
  }
  t.fail(`timed out waiting: ${what}`)
}

/** One worker's side: its own Redis connection, archive client and write-behind. */
function worker (t: Test, env: string, table: string, options: { flushLeaseMs?: number, roundSize?: number, parkBaseMs?: number } = {}) {
  const hot = new RedisHotState({ connection: redisServer.url, env, dedupeWindowMs: 86_400_000, flushLeaseMs: options.flushLeaseMs ?? 60_000 })
  t.teardown(() => hot.close())
  const archive = new DynamoArchive({ client: dynamo.doc, tableName: table })
  const bus = new MemoryBus()
  const { roundSize, parkBaseMs } = options
  const writeBehind = new WriteBehind({
    hot,
    archive,
    log: quiet,
    flushIntervalMs: 60_000,
    ...(roundSize === undefined ? {} : { roundSize }),
    ...(parkBaseMs === undefined ? {} : { parkBaseMs })
  })
  const fold = async (items: ScoredItem[]) => await foldBatch({ hot, archive, bus, now: Date.now }, { id: `b${ids++}`, acceptedAt: Date.now(), items })
  return { hot, archive, bus, writeBehind, fold }
}

async function newCluster () {
  const env = `t${randomUUID().slice(0, 8)}`
  const table = tableName(env)
  await ensureTable(dynamo.client, table, { local: true })
  return { env, table, keys: new RedisKeys(env) }
}

/** A time clear of a minute boundary, so every test item lands in the same 1m bucket. */
async function midMinute (): Promise<number> {
  for (;;) {
    const second = Date.now() % 60_000
    if (second > 5000 && second < 40_000) return Date.now()
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

  // A takes the eight buckets at rev 1 and is held in the archive write past its lease.
  armFaults('archive.put=delay:15000@1')
  t.teardown(() => armFaults(''))
  let aDone = false
  const aFlush = a.writeBehind.flushNow().finally(() => { aDone = true })
  await until(t, 'A holds the leases', async () => await eligible() === 0)
  await until(t, 'A\'s leases ran out', async () => await eligible() === 8)

  // Meanwhile the buckets change, and B writes the newer state.
  const second = [item('AAPL', now - 500, 0.9)]
  t.equal((await b.fold(second)).changed.length, 8)
  const bFlush = await b.writeBehind.flushNow()
  t.equal(bFlush.written, 8, 'B wrote rev 2')
  t.notOk(aDone, 'A is still held: its stale write lands last')
  const aResult = await aFlush
  t.equal(aResult.failed, false)
  t.equal(a.writeBehind.stats.bucketsSuperseded, 8, 'the archive refused A\'s older states')

  const refs: BucketRef[] = RESOLUTIONS.map((resolution) => ({ ticker: 'AAPL', resolution, start: bucketStart(now - 1000, resolution) }))
  const stored = await b.archive.get(refs, Date.now())
  t.equal(stored.length, 8)
  t.ok(stored.every((bucket) => bucket.rev === 2 && bucket.count === 3), 'the archive holds the newest rev of every bucket')
  t.ok((await b.hot.get(refs)).every((bucket) => bucket.rev === 2), 'as the hot state does')
  t.equal(await b.hot.dirtyCount(), 0, 'nothing newer waits unwritten')

  // Redis loses everything; the next fold reloads from the archive and nothing is lost.
  await admin.flushall()
  const third = [item('AAPL', now - 200, 0.1)]
  const reloaded = await b.fold(third)
  t.equal(reloaded.loaded, 8, 'reloaded from the archive')
  t.ok(reloaded.changed.every((bucket) => bucket.count === 4 && bucket.rev === RELOAD_REV_GAP + 3), 'every bucket counts all four items, its rev continuing past the reload gap')
  t.equal((await b.writeBehind.flushNow()).written, 8)
  const final = await a.archive.get(refs, Date.now())
  t.ok(final.length === 8 && final.every((bucket) => bucket.count === 4 && bucket.rev === RELOAD_REV_GAP + 3), 'and so does the archive')
})

t.test('after Redis is emptied a reloaded bucket continues from its archived rev', async (t) => {
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
  await sleep(10)
  t.equal(published.size, 8)
  for (const [id, revs] of published) {
    t.strictSame(revs, [1, 2, 3, RELOAD_REV_GAP + 3], `${id}: the archived rev 2 continues past the gap, above the lost rev 3 clients hold`)
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

t.test('with a cadence a changing bucket waits for it, and a bucket that ended since its write is taken at once', async (t) => {
  const { env, table } = await newCluster()
  const w = worker(t, env, table)
  const cadence = Object.fromEntries(RESOLUTIONS.map((resolution) => [resolution, 60 * 60_000]))
  // Late in a minute, so the 1m bucket ends while the test runs.
  for (;;) {
    const second = Date.now() % 60_000
    if (second > 50_000 && second < 55_000) break
    await sleep(250)
  }
  const now = Date.now()
  const refs: BucketRef[] = RESOLUTIONS.map((resolution) => ({ ticker: 'AAPL', resolution, start: bucketStart(now, resolution) }))
  const endedBy = (at: number) => refs.filter((ref) => ref.start + DURATION_MS[ref.resolution] <= at).map(bucketId).sort()
  await w.fold([item('AAPL', now)])
  t.equal((await w.writeBehind.flushNow()).written, 8, 'first writes are never held back')
  await w.fold([item('AAPL', now + 1)])

  const before = endedBy(Date.now())
  const early = (await w.hot.takeDirty(100, cadence)).map(bucketId).sort()
  t.strictSame(early, before, 'written less than a cadence ago: only a bucket that ended since is due')
  await w.hot.release(refs)

  const oneMinuteEnd = bucketStart(now, '1m') + 60_000
  await until(t, 'the 1m bucket ends', async () => Date.now() > oneMinuteEnd + 100)
  const due = (await w.hot.takeDirty(100, cadence)).map(bucketId).sort()
  t.ok(due.includes(bucketId(refs[0] as BucketRef)), 'the 1m bucket ended after its write: due at once')
  t.strictSame(due, endedBy(Date.now()), 'and only the buckets that ended')
  await w.hot.release(refs)
  t.equal((await w.hot.takeDirty(100)).length, 8, 'without a cadence every dirty bucket is due')
})

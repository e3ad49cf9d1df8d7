import { randomUUID } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { RedisKeys } from '../../shared/adapters/redis/keys.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import { type Aggregate, type Bucket, type ScoredItem, MAX_SOURCES, applyToBucket, foldAggregate, groupByBucket, labelFor } from '../../shared/timeseries/bucket.js'
import type { BucketRef } from '../../shared/timeseries/keys.js'
import { bucketStart } from '../../shared/timeseries/resolutions.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { cli } from '../helpers/redis-cluster.js'
import { TERM_SPAN } from '../../shared/timeseries/revision.js'
import { foldWithTerm } from '../helpers/fold-with-term.js'
import { armFaults } from '../../shared/fault-points.js'

const DAY = 86_400_000

function item (id: string, ts: number, score: number, source = 'tiingo', ticker = 'AAPL'): ScoredItem {
  return { id, ticker, ts, score, label: labelFor(score), source }
}

/** The buckets the domain folds these (fresh) items into, as one change each. */
function expected (items: ScoredItem[], now: number): Map<string, Bucket> {
  const result = new Map<string, Bucket>()
  for (const group of groupByBucket(items, now).values()) {
    const delta = foldAggregate(group.items)
    if (delta !== undefined) result.set(`${group.ref.resolution}@${group.ref.start}`, applyToBucket(group.ref, undefined, delta, { now, rev: 1 }))
  }
  return result
}

function withoutClock (bucket: Bucket): Omit<Bucket, 'last_updated'> {
  const { last_updated: _ignored, ...rest } = bucket
  return { ...rest, rev: rest.rev % TERM_SPAN }
}

const server = await startRedisServer(t)

async function newState (dedupeWindowMs = DAY): Promise<RedisHotState> {
  const hot = new RedisHotState({ connection: server.url, env: `t${randomUUID().slice(0, 8)}`, dedupeWindowMs })
  t.teardown(() => hot.close())
  return hot
}

/** A hot state of its own env, and a plain client to reach behind it. */
async function stateWithAdmin (t: { teardown: (fn: () => unknown) => void }): Promise<{ env: string, hot: RedisHotState, admin: Redis }> {
  const env = `t${randomUUID().slice(0, 8)}`
  const hot = new RedisHotState({ connection: server.url, env, dedupeWindowMs: DAY })
  t.teardown(() => hot.close())
  const admin = new Redis(server.url)
  t.teardown(() => admin.disconnect())
  return { env, hot, admin }
}

/** Folds, seeding known-empty buckets whenever the state asks. */
async function foldLoaded (hot: RedisHotState, items: ScoredItem[], now: number): Promise<{ changed: Bucket[], duplicates: number }> {
  for (;;) {
    const outcome = await foldWithTerm(hot, 'AAPL', items, { now })
    if (outcome.kind === 'applied') return outcome
    await hot.seed(outcome.refs, [])
  }
}

t.test('fold asks for loads first, then applies the merge law to all eight resolutions', async (t) => {
  const hot = await newState()
  const now = Date.now()
  const base = bucketStart(now, '1h')
  const items = [item('b', base + 1000, 0.5), item('a', base + 1000, -0.25, 'finnhub'), item('c', base + 500, 0.1)]
  const first = await foldWithTerm(hot, 'AAPL', items, { now })
  t.equal(first.kind, 'needs-load')
  if (first.kind !== 'needs-load') return
  t.equal(first.refs.length, 8)
  t.same(await hot.get(first.refs), [], 'needs-load changed nothing')
  await hot.seed(first.refs, [])
  const outcome = await foldWithTerm(hot, 'AAPL', items, { now })
  t.equal(outcome.kind, 'applied')
  if (outcome.kind !== 'applied') return
  const want = expected(items, now)
  t.equal(outcome.changed.length, 8)
  for (const bucket of outcome.changed) {
    t.strictSame(withoutClock(bucket), withoutClock(want.get(`${bucket.resolution}@${bucket.start}`) as Bucket))
    t.ok(bucket.last_updated > 0)
  }
  const oneMinute = outcome.changed.find((b) => b.resolution === '1m') as Bucket
  t.equal(oneMinute.open, 0.1, 'open is the earliest item')
  t.equal(oneMinute.close, 0.5, 'close is the last by (ts, id): "b" after "a"')
  t.strictSame(oneMinute.sources, ['finnhub', 'tiingo'])
  t.strictSame(await hot.get([oneMinute]), [oneMinute], 'get returns the stored state')
})

t.test('dedupe: first copy counts, replays change nothing, the window bounds memory', async (t) => {
  const hot = await newState()
  const now = Date.now()
  const ts = bucketStart(now, '1m') + 10
  const one = await foldLoaded(hot, [item('x', ts, 0.9), item('x', ts, -0.9)], now)
  t.equal(one.duplicates, 1)
  t.equal(one.changed[0]?.sum, 0.9, 'the first copy in a batch wins')
  const replay = await foldLoaded(hot, [item('x', ts, -0.9)], now)
  t.match(replay, { changed: [], duplicates: 1 })
  const mixed = await foldLoaded(hot, [item('x', ts, 0.1), item('y', ts, 0.2)], now)
  t.equal(mixed.duplicates, 1)
  const bucket = mixed.changed.find((b) => b.resolution === '1m') as Bucket
  t.equal(bucket.count, 2)
  t.equal(bucket.rev % TERM_SPAN, 2)

  const short = await newState(200)
  await foldLoaded(short, [item('z', ts, 0.3)], now)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const again = await foldLoaded(short, [item('z', ts, 0.3)], now)
  t.equal(again.duplicates, 0, 'an id is forgotten after the window')
})

t.test('needs-load changes nothing, not even dedupe state; seed never overwrites', async (t) => {
  const hot = await newState()
  const now = Date.now()
  const ts = bucketStart(now, '1m') - 60_000
  await foldLoaded(hot, [item('p', ts, 0.5)], now)
  const before = await hot.range('AAPL', '1m', 0, now + DAY)

  const archived: Bucket = { ...(before[0] as Bucket), start: bucketStart(ts - 60_000, '1m'), count: 5, sum: 1, rev: 7, sources: ['archive'] }
  const loaded = new Set(expected([item('p', ts, 0.5)], now).keys())
  const missing = [...expected([item('q', archived.start, 0.5)], now).keys()].filter((k) => !loaded.has(k))
  const outcome = await foldWithTerm(hot, 'AAPL', [item('q', archived.start, 0.5), item('r', ts, 0.5)], { now })
  t.equal(outcome.kind, 'needs-load')
  if (outcome.kind !== 'needs-load') return
  t.same(outcome.refs.map((r) => `${r.resolution}@${r.start}`).sort(), missing.sort(), 'only buckets that are missing')
  t.strictSame(await hot.range('AAPL', '1m', 0, now + DAY), before, 'no bucket changed')

  await hot.seed(outcome.refs, [archived])
  await hot.seed(outcome.refs, [{ ...archived, count: 999 }])
  const applied = await foldWithTerm(hot, 'AAPL', [item('q', archived.start, 0.5), item('r', ts, 0.5)], { now })
  t.equal(applied.kind, 'applied')
  if (applied.kind !== 'applied') return
  t.equal(applied.duplicates, 0, 'ids were not recorded by the refused fold')
  const grown = applied.changed.find((b) => b.resolution === '1m' && b.start === archived.start) as Bucket
  t.equal(grown.count, 6, 'folded on top of the archived bucket, not over it')
  t.ok(grown.rev > 7 && grown.rev % TERM_SPAN === 2, 'above the archived position: the second change of the ticker in its term')
  t.strictSame(grown.sources, ['archive', 'tiingo'])
})

t.test('the fold keeps the first MAX_SOURCES sources, as the domain does', async (t) => {
  const hot = await newState()
  const now = Date.now()
  const ts = bucketStart(now, '1h') + 1000
  const sources = Array.from({ length: MAX_SOURCES + 20 }, (_, i) => `src-${String(i).padStart(3, '0')}`)
  const items = sources.map((source, i) => item(`s${i}`, ts + i, 0.1, source))
  // In several batches, so the bound applies both to each batch and to the merge in Lua.
  for (let i = 0; i < items.length; i += 9) await foldLoaded(hot, items.slice(i, i + 9).reverse(), now)
  const [bucket] = await hot.get([{ ticker: 'AAPL', resolution: '1h', start: bucketStart(now, '1h') }])
  t.strictSame(bucket?.sources, (foldAggregate(items) as Aggregate).sources)
  t.equal(bucket?.sources.length, MAX_SOURCES)
  t.equal(bucket?.sources_truncated, true, 'and says that it left sources out')
  t.equal(bucket?.count, items.length)
})

t.test('a bucket that kept every source does not say it left some out', async (t) => {
  const hot = await newState()
  const now = Date.now()
  const ts = bucketStart(now, '1h') + 1000
  const sources = Array.from({ length: MAX_SOURCES }, (_, i) => `src-${String(i).padStart(3, '0')}`)
  for (let i = 0; i < sources.length; i += 9) await foldLoaded(hot, sources.slice(i, i + 9).map((source, j) => item(`k${i + j}`, ts + i + j, 0.1, source)), now)
  const [bucket] = await hot.get([{ ticker: 'AAPL', resolution: '1h', start: bucketStart(now, '1h') }])
  t.equal(bucket?.sources.length, MAX_SOURCES)
  t.equal(bucket?.sources_truncated, undefined, 'exactly MAX_SOURCES sources: none left out')
  await foldLoaded(hot, [item('one-more', ts, 0.1, 'zzz-late')], now)
  const [grown] = await hot.get([{ ticker: 'AAPL', resolution: '1h', start: bucketStart(now, '1h') }])
  t.equal(grown?.sources_truncated, true, 'one source more: left out, and said so')
  t.strictSame(grown?.sources, bucket?.sources, 'the kept sources are still the smallest')
})

t.test('range is ascending with from inclusive and to exclusive', async (t) => {
  const hot = await newState()
  const now = Date.now()
  const start = bucketStart(now, '1m') - 10 * 60_000
  const items = Array.from({ length: 10 }, (_, i) => item(`i${i}`, start + i * 60_000 + 5, i / 10))
  await foldLoaded(hot, items.slice().reverse(), now)
  const got = await hot.range('AAPL', '1m', start + 2 * 60_000, start + 5 * 60_000)
  t.same(got.map((b) => b.start), [start + 2 * 60_000, start + 3 * 60_000, start + 4 * 60_000])
  t.same(await hot.range('AAPL', '5m', 0, 1), [])
  t.same(await hot.range('MSFT', '1m', 0, now + DAY), [])
})

t.test('dirty buckets: take, clean only at the written rev, mark again', async (t) => {
  const hot = await newState()
  const now = Date.now()
  const ts = bucketStart(now, '1m') + 1
  await foldLoaded(hot, [item('d1', ts, 0.2)], now)
  t.equal(await hot.dirtyCount(), 8)
  const taken = await hot.takeDirty(100)
  t.equal(taken.length, 8)
  t.equal((await hot.takeDirty(100)).length, 0, 'leased buckets are not handed to a second flush at the same time')

  await foldLoaded(hot, [item('d2', ts, 0.4)], now)
  await hot.markClean(taken)
  t.equal(await hot.dirtyCount(), 8, 'a change after the take keeps buckets dirty')
  const fresh = await hot.takeDirty(100)
  t.ok(fresh.every((b) => b.rev % TERM_SPAN === 2))
  await hot.markClean(fresh)
  t.equal(await hot.dirtyCount(), 0)

  await hot.markDirty([fresh[0] as BucketRef, { ticker: 'AAPL', resolution: '1m', start: 0 }])
  t.equal(await hot.dirtyCount(), 1, 'only loaded buckets are marked')
  t.strictSame(await hot.takeDirty(10), [fresh[0]])
})

t.test('a flush lease that runs out hands the buckets to the next flush', async (t) => {
  const env = `t${randomUUID().slice(0, 8)}`
  const hot = new RedisHotState({ connection: server.url, env, dedupeWindowMs: DAY, flushLeaseMs: 200 })
  t.teardown(() => hot.close())
  const now = Date.now()
  await foldLoaded(hot, [item('l1', bucketStart(now, '1m') + 1, 0.2)], now)
  t.equal((await hot.takeDirty(100)).length, 8, 'a flush takes all eight')
  t.equal((await hot.takeDirty(100)).length, 0, 'while leased, none')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal((await hot.takeDirty(100)).length, 8, 'the flusher never came back: taken again')
})

t.test('journal marks are the memory hot state\'s: a bucket seeded with one keeps it as it folds', async (t) => {
  const hot = await newState()
  const now = Date.now()
  const ref = { ticker: 'AAPL', resolution: '1m' as const, start: bucketStart(now, '1m') }
  const seeded = { ...ref, ...(foldAggregate([item('s0', ref.start + 1, 0.1)]) as NonNullable<ReturnType<typeof foldAggregate>>), rev: 3, last_updated: now, seq: 5, epoch: 'e1' }
  await hot.seed([ref], [seeded])
  const folded = await foldLoaded(hot, [item('s1', ref.start + 2, 0.2)], now)
  const bucket = folded.changed.find((b) => b.resolution === '1m')
  t.equal(bucket?.count, 2)
  t.same([bucket?.seq, bucket?.epoch], [5, 'e1'], 'seq and epoch are carried, never changed')
})

t.test('concurrent workers keep totals exact', async (t) => {
  const env = `t${randomUUID().slice(0, 8)}`
  const workers = Array.from({ length: 4 }, () => new RedisHotState({ connection: server.url, env, dedupeWindowMs: DAY }))
  t.teardown(() => Promise.all(workers.map((w) => w.close())))
  const now = Date.now()
  const base = bucketStart(now, '1h')
  const items = Array.from({ length: 400 }, (_, i) => item(`c${i % 300}`, base + (i % 300) * 1000, ((i % 300) % 21) / 20 - 0.5))
  const batches = Array.from({ length: 40 }, (_, i) => items.slice(i * 10, i * 10 + 10))
  await Promise.all(batches.map(async (batch, i) => {
    const hot = workers[i % workers.length] as RedisHotState
    for (;;) {
      const outcome = await foldWithTerm(hot, 'AAPL', batch, { now })
      if (outcome.kind === 'applied') return
      await hot.seed(outcome.refs, [])
    }
  }))
  const [hour] = await (workers[0] as RedisHotState).range('AAPL', '1h', base, base + 1)
  const want = foldAggregate(items.slice(0, 300)) as NonNullable<ReturnType<typeof foldAggregate>>
  t.equal(hour?.count, 300)
  t.ok(Math.abs((hour?.sum ?? 0) - want.sum) < 1e-9)
  t.equal(hour?.open, want.open)
  t.equal(hour?.close, want.close)
})

t.test('a retried fold whose first run applied unseen (its index write lost) indexes the ticker again', async (t) => {
  const { env, hot, admin } = await stateWithAdmin(t)
  const now = Date.now()
  const items = [item('lost-1', now - 1000, 0.4), item('lost-2', now - 900, -0.2)]
  await foldLoaded(hot, items, now)
  t.equal(await hot.dirtyCount(), 8)
  // The fold applied, but its caller never wrote the index (a failing Redis lost the reply or the write).
  await admin.zrem(new RedisKeys(env).dirtyTickers(), 'AAPL')
  t.equal(await hot.dirtyCount(), 0, 'the write-behind cannot see the dirty buckets')
  const retried = await foldLoaded(hot, items, now)
  t.equal(retried.duplicates, 2, 'the retry finds every item seen')
  t.equal(await hot.dirtyCount(), 8, 'and puts the ticker back in the index, so its buckets are written')
})

// A taken bucket whose hash is gone (expired, or rolled back by a failover) is forgotten —
// but a fold may bring the bucket back between the flusher's read and that forgetting;
// then its new state must still be written behind.
t.test('a bucket that comes back between a flush read that missed it and the drop of its mark stays dirty', async (t) => {
  const { env, hot, admin } = await stateWithAdmin(t)
  const now = Date.now()
  const ts = bucketStart(now, '1m') + 1
  const minute: BucketRef = { ticker: 'AAPL', resolution: '1m', start: bucketStart(now, '1m') }
  await foldLoaded(hot, [item('gone-1', ts, 0.2)], now)
  await admin.del(new RedisKeys(env).bucket(minute))
  armFaults('hot.take-dirty.after-read=delay:400@1')
  t.teardown(() => armFaults(''))
  const taking = hot.takeDirty(100)
  await new Promise((resolve) => setTimeout(resolve, 150))
  // Inside the window: the take read the buckets (the minute was missing); a new item brings it back.
  await foldLoaded(hot, [item('back-1', ts, 0.6)], now)
  const taken = await taking
  t.equal(taken.length, 7, 'the take hands out the seven buckets it found')
  t.ok(taken.every((b) => b.resolution !== '1m'))
  const again = await hot.takeDirty(100)
  t.same(again.map((b) => [b.resolution, b.count]), [['1m', 1]], 'the minute that came back is dirty and due: its new state will be written')
})

// A reply that never comes (a node that died mid-failover, here a paused redis-server) used to
// hold its caller for ever: the open-defect cluster failover test hung on such a read.
t.test('a hot-state command with no reply fails after the command timeout instead of waiting for ever', async (t) => {
  const server = await startRedisServer(t)
  const hot = new RedisHotState({ connection: server.url, env: `t${randomUUID().slice(0, 8)}`, dedupeWindowMs: 86_400_000, commandTimeoutMs: 500 })
  t.teardown(async () => await hot.close())
  const ref: BucketRef = { ticker: 'AAPL', resolution: '1m', start: bucketStart(Date.now(), '1m') }
  t.same(await hot.get([ref]), [], 'answers while Redis does')
  const pid = Number(/process_id:(\d+)/.exec(await cli(server.port, 'info', 'server'))?.[1])
  process.kill(pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(pid, 'SIGCONT') } catch {} })
  const asked = Date.now()
  const outcome = await Promise.race([
    hot.get([ref]).then(() => 'answered', (err: unknown) => String(err)),
    new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5000))
  ])
  t.match(outcome, /timed out/i, `the read fails (${outcome}, after ${Date.now() - asked} ms)`)
  process.kill(pid, 'SIGCONT')
  t.same(await hot.get([ref]), [], 'and the next read answers once Redis does again')
})

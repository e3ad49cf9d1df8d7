import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { decodeBusMessage, encodeBusMessage } from '../../shared/adapters/redis/bus-message.js'
import { RedisKeys } from '../../shared/adapters/redis/keys.js'
import { RedisBus } from '../../shared/adapters/redis/redis-bus.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import { MemoryBus } from '../../shared/adapters/memory/memory-bus.js'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import type { BucketEvent } from '../../shared/ports/bus.js'
import { type Bucket, type ScoredItem, labelFor, MAX_SOURCES } from '../../shared/timeseries/bucket.js'
import { seriesKey } from '../../shared/timeseries/keys.js'
import { RESOLUTIONS, bucketStart } from '../../shared/timeseries/resolutions.js'
import { foldBatch } from '../../services/aggregator/fold-batch.js'
import { MemoryArchive } from '../helpers/memory-archive.js'
import { startRedisServer } from '../helpers/redis-server.js'

/*
 * The fold script's messages and the TypeScript encoder's are one format: each decodes,
 * with the codec that reads the hash, to exactly the bucket the hot state returns.
 */

const server = await startRedisServer(t)

/** Every field of a bucket, numbers compared with Object.is (so -0 and the last digit count). */
function sameBucket (t: Test, got: Bucket | undefined, want: Bucket, what: string): void {
  t.ok(got !== undefined, `${what}: a bucket`)
  if (got === undefined) return
  t.strictSame(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: the same fields`)
  const numbers = ['start', 'open', 'high', 'low', 'close', 'count', 'sum', 'rev', 'last_updated'] as const
  for (const field of numbers) t.ok(Object.is(got[field], want[field]), `${what}: ${field} ${got[field]} is ${want[field]}`)
  t.strictSame(got.label_counts, want.label_counts, `${what}: label_counts`)
  t.strictSame(got.sources, want.sources, `${what}: sources`)
  t.equal(got.sources_truncated, want.sources_truncated, `${what}: sources_truncated`)
  t.strictSame(got.first, want.first, `${what}: first`)
  t.strictSame(got.last, want.last, `${what}: last`)
  t.strictSame(got, want, `${what}: the whole bucket`)
}

t.test('a change the fold script publishes decodes to exactly the stored bucket, and so does the TypeScript encoding of it', async (t) => {
  const env = `msg-${randomUUID().slice(0, 8)}`
  const hot = new RedisHotState({ connection: server.url, env, dedupeWindowMs: 86_400_000 })
  const bus = new RedisBus({ url: server.url, env })
  // The raw text on one channel, as Redis delivers it.
  const raw = new Redis(server.url)
  const reader = new Redis(server.url)
  t.teardown(async () => { await Promise.all([hot.close(), bus.close()]); raw.disconnect(); reader.disconnect() })
  const texts: string[] = []
  raw.on('message', (_channel: string, text: string) => texts.push(text))
  await raw.subscribe(new RedisKeys(env).channel(seriesKey('AAPL', '1m')))
  const events = new Map<string, BucketEvent[]>()
  for (const resolution of RESOLUTIONS) {
    await bus.subscribe(seriesKey('AAPL', resolution), (event) => { events.set(resolution, [...events.get(resolution) ?? [], event]) })
  }

  const now = Date.now()
  const at = bucketStart(now, '1m') + 1_234
  // Scores whose text needs 16–17 significant digits, a negative zero, ids JSON must escape.
  const scores = [1 / 3, -2 / 3, Math.PI / 4, 0.1 + 0.2, -0, 0.1234567890123456, -Math.E / 3, 2 ** -40]
  const ids = ['a"b\\c/d', 'é😀', '\u{10FFFF}z', 'plain', 'tab\there', '日本', 'a-b', 'Z']
  const item = (i: number, id: string, source: string): ScoredItem => {
    const score = scores[i % scores.length] as number
    return { id, ticker: 'AAPL', ts: at + (i % 5) * 3, score, label: labelFor(score), source }
  }
  // More sources than a bucket keeps, over two folds: the second merges into stored state.
  const first = ids.map((id, i) => item(i, id, `src-${String(i).padStart(3, '0')}`))
  const second = Array.from({ length: MAX_SOURCES + 6 }, (_, i) => item(i + 3, `more-${i}`, `s/${String(i).padStart(3, '0')}"`))
  const archive = new MemoryArchive()
  const acceptedAt = now - 17
  await foldBatch({ hot, archive, now: Date.now }, { id: 'one', acceptedAt, items: first })
  await foldBatch({ hot, archive, now: Date.now }, { id: 'two', acceptedAt: acceptedAt + 1, items: second })
  for (let i = 0; i < 200 && RESOLUTIONS.some((r) => (events.get(r)?.length ?? 0) < 2); i++) await sleep(10)

  const stored = await hot.get(RESOLUTIONS.map((resolution) => ({ ticker: 'AAPL', resolution, start: bucketStart(at, resolution) })))
  t.equal(stored.length, 8)
  t.ok(stored.every((b) => b.sources_truncated === true && b.sources.length === MAX_SOURCES), 'the buckets left sources out')
  for (const bucket of stored) {
    const heard = events.get(bucket.resolution) ?? []
    t.equal(heard.length, 2, `${bucket.resolution}: one message per fold`)
    const last = heard.at(-1)
    t.equal(last?.kind, 'change')
    t.equal(last?.acceptedAt, acceptedAt + 1, `${bucket.resolution}: acceptedAt of the batch`)
    sameBucket(t, last?.bucket, bucket, `${bucket.resolution} from the fold script`)
    const viaTs = decodeBusMessage(encodeBusMessage({ kind: 'change', bucket, acceptedAt: acceptedAt + 1 }))
    sameBucket(t, viaTs?.bucket, bucket, `${bucket.resolution} from the TypeScript encoder`)
  }

  const text = texts.at(-1) ?? ''
  const parsed = JSON.parse(text) as unknown[]
  t.ok(Array.isArray(parsed) && parsed.every((value) => typeof value === 'string'), 'the script sends a JSON array of strings')
  const [stored1m] = stored.filter((b) => b.resolution === '1m')
  if (stored1m !== undefined) {
    const key = new RedisKeys(env).bucket(stored1m)
    const fields = await reader.hmget(key, 'o', 'h', 's', 'src')
    t.strictSame([parsed[5], parsed[6], parsed[10], parsed[14]], fields, 'carrying the hash fields exactly as stored')
  }
})

t.test('a final event the finalizer publishes through the bus arrives as the stored bucket', async (t) => {
  const env = `msg-${randomUUID().slice(0, 8)}`
  const hot = new RedisHotState({ connection: server.url, env, dedupeWindowMs: 86_400_000 })
  const bus = new RedisBus({ url: server.url, env })
  t.teardown(async () => { await Promise.all([hot.close(), bus.close()]) })
  const heard: BucketEvent[] = []
  await bus.subscribe(seriesKey('MSFT', '5m'), (event) => { if (event.kind === 'final') heard.push(event) })
  const now = Date.now()
  await foldBatch({ hot, archive: new MemoryArchive(), now: Date.now }, {
    id: 'f',
    acceptedAt: now,
    items: [0.7071067811865476, -0.30000000000000004].map((score, i) => ({ id: `f${i}`, ticker: 'MSFT', ts: now - i, score, label: labelFor(score), source: 'tiingo' }))
  })
  const [bucket] = await hot.get([{ ticker: 'MSFT', resolution: '5m', start: bucketStart(now, '5m') }])
  if (bucket === undefined) throw new Error('not folded')
  await bus.publish([{ kind: 'final', bucket }])
  for (let i = 0; i < 200 && heard.length === 0; i++) await sleep(10)
  t.equal(heard.length, 1)
  t.equal(heard[0]?.acceptedAt, undefined, 'a final event has no acceptedAt')
  sameBucket(t, heard[0]?.bucket, bucket, 'final')
})

// A batch can change several buckets of one series, all at the same rev: only the last
// message of the series says no more states at that rev follow (the gateway vouches the rev
// on it). The fold script and the memory hot state mark the same messages.
t.test('only the last state a fold publishes in a series is marked lastAtRev, by both hot states', async (t) => {
  const now = Date.now()
  const minute = bucketStart(now, '1h') + 60_000
  // Two 1m buckets, one 5m bucket (both minutes fall in it), one 1h bucket.
  const items: ScoredItem[] = [0, 1, 2].map((i) => ({ id: `m${i}`, ticker: 'IBM', ts: minute + (i === 2 ? 60_000 : i * 1000), score: 0.5, label: labelFor(0.5), source: 'tiingo' }))
  const marksOf = (events: BucketEvent[]): string[] => events.map((e) => `${e.bucket.resolution}@${(e.bucket.start - minute) / 60_000}${e.lastAtRev === true ? ' last' : ''}`)

  const env = `msg-${randomUUID().slice(0, 8)}`
  const hot = new RedisHotState({ connection: server.url, env, dedupeWindowMs: 86_400_000 })
  const bus = new RedisBus({ url: server.url, env })
  t.teardown(async () => { await Promise.all([hot.close(), bus.close()]) })
  const fromRedis: BucketEvent[] = []
  for (const resolution of ['1m', '5m', '1h'] as const) await bus.subscribe(seriesKey('IBM', resolution), (event) => { fromRedis.push(event) })
  await foldBatch({ hot, archive: new MemoryArchive(), now: Date.now }, { id: 'b', acceptedAt: now, items })
  for (let i = 0; i < 200 && fromRedis.length < 4; i++) await sleep(10)

  const memoryBus = new MemoryBus()
  const memory = new MemoryHotState({ dedupeWindowMs: 86_400_000, bus: memoryBus })
  const fromMemory: BucketEvent[] = []
  for (const resolution of ['1m', '5m', '1h'] as const) await memoryBus.subscribe(seriesKey('IBM', resolution), (event) => { fromMemory.push(event) })
  await foldBatch({ hot: memory, archive: new MemoryArchive(), now: Date.now }, { id: 'b', acceptedAt: now, items })
  for (let i = 0; i < 50 && fromMemory.length < 4; i++) await new Promise((resolve) => setImmediate(resolve))

  const byResolution = (marks: string[]): string[] => [...marks].sort()
  t.strictSame(byResolution(marksOf(fromRedis)), ['1h@-1 last', '1m@0', '1m@1 last', '5m@-1 last'], 'the fold script marks the last 1m bucket only')
  t.strictSame(byResolution(marksOf(fromMemory)), byResolution(marksOf(fromRedis)), 'the memory hot state marks the same')
  t.ok(fromRedis.filter((e) => e.bucket.resolution === '1m').every((e) => e.bucket.rev === fromRedis[0]?.bucket.rev), 'both 1m states carry the same rev')
})

import fc from 'fast-check'
import t from 'tap'
import { Channel } from '../../services/gateway/streaming/channel.js'
import { ConnectionActor } from '../../services/gateway/streaming/connection-actor.js'
import { bucketDelta } from '../../services/gateway/streaming/delta.js'
import { StreamEvent } from '../../services/gateway/streaming/protocol.js'
import { applyDelta, type BucketDelta, deltaKey, DeltaMemory } from '../../shared/stream-delta.js'
import { type Bucket, toWireBucket, type WireBucket } from '../../shared/timeseries/bucket.js'
import { feedableCache, manualScheduler, type RecordingSink, recordingSink, START, testBucket, wakeDue } from '../helpers/stream-fakes.js'

/*
 * The delta encoding: a `bucket_delta` applied to the state it is against gives the full
 * state, and through debounce, backpressure, coalescing and resume replays the gateway
 * never sends a delta against a state the client does not hold.
 */

const MINUTE = 60_000

t.test('a delta applied to its base gives the full state, field for field', async (t) => {
  const base: Bucket = { ...testBucket(START, 5, START + 1000), open: 0.1, high: 0.5, low: -0.2, close: 0.3, sum: 1.5, count: 5 }
  const next: Bucket = { ...base, high: 0.7, close: 0.7, sum: 2.2, count: 6, label_counts: { ...base.label_counts, positive: 1 }, sources: ['a', 'test'], rev: 9, last_updated: START + 7000 }
  const now = START + 8000
  const delta = bucketDelta(base, next, now, '9')
  t.same(Object.keys(delta).sort(), ['b', 'c', 'h', 'id', 'k', 'lp', 'n', 'pp', 'r', 's', 'src', 'type', 'u'].sort(), 'only what changed, and the progress')
  t.same(applyDelta(toWireBucket(base, START + 1000), delta), toWireBucket(next, now))
  const completed = bucketDelta(next, next, START + MINUTE + 5, '9')
  t.same(applyDelta(toWireBucket(next, now), completed), toWireBucket(next, START + MINUTE + 5), 'completion: no change but is_partial, and the partial fields go')
  t.equal(applyDelta(toWireBucket(base, now), { ...delta, b: 4 }), undefined, 'not against another state')
  t.ok(JSON.stringify(delta).length < JSON.stringify(toWireBucket(next, now)).length / 2)
})

t.test('both ends of a connection remember the same buckets', async (t) => {
  const gateway = new DeltaMemory<number>(3)
  const client = new DeltaMemory<number>(3)
  for (const key of ['a', 'b', 'c', 'a', 'd', 'e', 'a']) {
    gateway.touch(key, 1)
    client.touch(key, 1)
  }
  t.same(['a', 'b', 'c', 'd', 'e'].map((k) => gateway.get(k) !== undefined), [true, false, false, true, true])
  t.same(['a', 'b', 'c', 'd', 'e'].map((k) => client.get(k) !== undefined), [true, false, false, true, true])
})

type Step =
  | { kind: 'fold', slots: number[], close: number, high: number, source: boolean, label: number }
  | { kind: 'tick', ms: number }
  | { kind: 'pressure', client: number, on: boolean }
  | { kind: 'replay', client: number, slot: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('fold' as const), slots: fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 3 }), close: fc.integer({ min: 0, max: 2 }), high: fc.integer({ min: 0, max: 1 }), source: fc.boolean(), label: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pressure' as const), client: fc.integer({ min: 0, max: 2 }), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('replay' as const), client: fc.integer({ min: 0, max: 2 }), slot: fc.integer({ min: 0, max: 3 }) }) }
)

/** The SDK's rule on a delta connection: full states and applied deltas are what it remembers. */
function receive (memory: DeltaMemory<WireBucket>, sink: RecordingSink, from: number): { states: WireBucket[], gap: boolean, deltas: number } {
  const states: WireBucket[] = []
  let deltas = 0
  for (const rendered of sink.writes.slice(from).flat()) {
    const message = JSON.parse(rendered.ws) as { type: string, bucket: WireBucket } | BucketDelta
    if (message.type === 'bucket_delta') {
      const delta = message as BucketDelta
      const held = memory.get(delta.k)
      const state = held === undefined ? undefined : applyDelta(held, delta)
      if (state === undefined) return { states, gap: true, deltas }
      deltas++
      memory.touch(delta.k, state)
      states.push(state)
    } else {
      const { bucket } = message as { bucket: WireBucket }
      memory.touch(deltaKey(bucket.ticker, bucket.resolution, Date.parse(bucket.timestamp)), bucket)
      states.push(bucket)
    }
  }
  return { states, gap: false, deltas }
}

t.test('through debounce, backpressure, coalescing and replays, every delta is against the state the client holds, and the client ends with the full states', async (t) => {
  let deltasSeen = 0
  fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 80 }), (steps) => {
    let now = START
    const scheduler = manualScheduler()
    const { cache, feed } = feedableCache()
    const channel = new Channel(cache, 'AAPL', '1m', { debounceMs: 250, now: () => now, scheduler })
    // Two delta clients and one full client, each with its own backpressure.
    const sinks = [recordingSink(), recordingSink(), recordingSink()]
    const actors = sinks.map((sink, i) => new ConnectionActor(sink, { recheckMs: 50, stallLimitMs: 1e9, highWaterBytes: 1000, now: () => now, scheduler, encoding: i < 2 ? 'delta' : 'full' }))
    for (const actor of actors) channel.watchers.add(actor)
    const memories = sinks.map(() => new DeltaMemory<WireBucket>())
    const read = sinks.map(() => 0)
    const newest = new Map<number, Bucket>()
    let rev = 0
    const wake = (): void => wakeDue(scheduler, now)
    const drain = (): boolean => {
      for (let i = 0; i < sinks.length; i++) {
        const got = receive(memories[i] as DeltaMemory<WireBucket>, sinks[i] as RecordingSink, read[i] as number)
        if (got.gap) return false
        if (i === 2 && got.deltas > 0) return false
        deltasSeen += got.deltas
        read[i] = (sinks[i] as RecordingSink).writes.length
      }
      return true
    }
    for (const s of steps) {
      if (s.kind === 'fold') {
        rev++
        for (const slot of s.slots) {
          const previous = newest.get(slot)
          const bucket: Bucket = {
            ...testBucket(START + slot * MINUTE, rev, now),
            close: s.close / 4,
            high: Math.max(previous?.high ?? 0, s.high / 2),
            sum: (previous?.sum ?? 0) + s.close / 4,
            label_counts: { positive: (previous?.label_counts.positive ?? 0) + (s.label === 0 ? 1 : 0), neutral: rev, negative: (previous?.label_counts.negative ?? 0) + (s.label === 2 ? 1 : 0) },
            sources: s.source ? ['a', 'test'] : (previous?.sources ?? ['test'])
          }
          newest.set(slot, bucket)
          feed({ kind: 'change', bucket }, rev)
        }
      } else if (s.kind === 'tick') {
        now += s.ms
        wake()
      } else if (s.kind === 'pressure') {
        (sinks[s.client] as RecordingSink).buffered = s.on ? 10_000 : 0
        wake()
      } else {
        // A resume replay: the full state, straight to one connection.
        const bucket = newest.get(s.slot)
        if (bucket !== undefined) actors[s.client]?.offer([new StreamEvent(bucket, 'resume', now, bucket.rev)], now)
      }
      if (!drain()) return false
    }
    for (const sink of sinks) sink.buffered = 0
    for (let i = 0; i < 5; i++) {
      now += 1000
      wake()
    }
    if (!drain()) return false
    // Every client ends with the newest state of every bucket, whole.
    for (const memory of memories) {
      for (const bucket of newest.values()) {
        const held = memory.get(deltaKey('AAPL', '1m', bucket.start))
        const { progress_pct: _p, ...want } = toWireBucket(bucket, now)
        if (held === undefined) return false
        const { progress_pct: _q, ...got } = held
        if (JSON.stringify(Object.entries(got).sort()) !== JSON.stringify(Object.entries(want).sort())) return false
      }
    }
    return true
  }), { numRuns: 400 })
  t.ok(deltasSeen > 1000, `deltas were sent (${deltasSeen})`)
})

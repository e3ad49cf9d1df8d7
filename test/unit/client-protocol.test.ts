import type { Static } from '@sinclair/typebox'
import fc from 'fast-check'
import t from 'tap'
import { ResumeToken } from '../../services/gateway/streaming/resume.js'
import type { SeriesKey } from '../../shared/timeseries/keys.js'
import type { BucketSchema, TimeseriesPageSchema, TimeseriesResponseSchema } from '../../services/gateway/schemas.js'
import type {
  PingMessageSchema, RefreshMessageSchema, ServerEvents, SnapshotMessageSchema, SubscribeMessageSchema, UnsubscribeMessageSchema
} from '../../services/gateway/streaming/protocol.js'
import { isNewerState } from '../../shared/timeseries/revision.js'
import { ResumePositions } from '../../web/client/src/resume.js'
import { Series, Subscription } from '../../web/client/src/series.js'
import type {
  Bucket, BucketDelta, BucketEvent, ErrorEvent, HeartbeatEvent, HistoryPage, HistoryResponse, PingMessage, PongEvent, RefreshedEvent, RefreshMessage, ResumedEvent, SnapshotEvent, SnapshotMessage,
  SubscribedEvent, SubscribeMessage, UnsubscribeMessage
} from '../../web/client/src/types.js'

/*
 * The SDK's wire types against the gateway's TypeBox schemas. The assertions below are
 * checked by `npm run typecheck`: a field added, removed, renamed or retyped on either side
 * fails it. Client messages must be exactly what the schemas accept; server events must
 * have exactly the schema's fields, and what the schema allows must fit the SDK's type
 * (the SDK may name a string field more narrowly, e.g. a bucket's `resolution`).
 */

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
type SameKeys<A, B> = Equal<keyof A, keyof B>
type Assignable<From, To> = [From] extends [To] ? true : false
const check = <T extends true>(value: T): T => value

// Client messages: the same types.
check<Equal<SubscribeMessage, Static<typeof SubscribeMessageSchema>>>(true)
check<Equal<UnsubscribeMessage, Static<typeof UnsubscribeMessageSchema>>>(true)
check<Equal<SnapshotMessage, Static<typeof SnapshotMessageSchema>>>(true)
check<Equal<PingMessage, Static<typeof PingMessageSchema>>>(true)
check<Equal<RefreshMessage, Static<typeof RefreshMessageSchema>>>(true)

// Buckets and history: the same fields; the schema's values fit the SDK's (resolution narrowed).
type WireBucketFromSchema = Static<typeof BucketSchema>
check<SameKeys<Bucket, WireBucketFromSchema>>(true)
check<Assignable<Omit<WireBucketFromSchema, 'resolution'>, Omit<Bucket, 'resolution'>>>(true)
check<SameKeys<HistoryResponse, Static<typeof TimeseriesResponseSchema>>>(true)
check<SameKeys<HistoryPage, Static<typeof TimeseriesPageSchema>>>(true)

// Server events: the same fields, and every non-bucket field's type fits.
type Events = typeof ServerEvents
check<SameKeys<BucketEvent, Static<Events['partial_bucket']>>>(true)
check<SameKeys<Omit<BucketEvent, 'progress_pct'>, Static<Events['bucket_update']>>>(true)
check<Assignable<Omit<Static<Events['partial_bucket']>, 'bucket' | 'type'>, Omit<BucketEvent, 'bucket' | 'type'>>>(true)
check<Equal<BucketDelta, Static<Events['bucket_delta']>>>(true)
check<Assignable<Static<Events['heartbeat']>, HeartbeatEvent>>(true)
check<SameKeys<HeartbeatEvent, Static<Events['heartbeat']>>>(true)
check<Assignable<Static<Events['subscribed']>, SubscribedEvent>>(true)
check<SameKeys<SubscribedEvent, Static<Events['subscribed']>>>(true)
check<SameKeys<SnapshotEvent, Static<Events['snapshot']>>>(true)
check<Equal<ResumedEvent, Static<Events['resumed']>>>(true)
check<Assignable<Static<Events['pong']>, PongEvent>>(true)
check<SameKeys<RefreshedEvent, Static<Events['refreshed']>>>(true)
check<Assignable<Static<Events['error']>, ErrorEvent>>(true)
check<SameKeys<ErrorEvent, Static<Events['error']>>>(true)
// `accepted_at` is epoch ms, a number on the wire.
check<Equal<BucketEvent['accepted_at'], number | undefined>>(true)

t.pass('the SDK wire types match the protocol schemas (checked by the type check)')

function bucket (timestamp: string, rev: number, isPartial: boolean): Bucket {
  const labels = { positive: 0, neutral: 0, negative: 0 }
  return { ticker: 'AAPL', resolution: '1m', timestamp, open: 0, high: 0, low: 0, close: 0, count: rev, sum: 0, avg: 0, label_counts: labels, sources: [], sources_truncated: false, last_updated: timestamp, is_partial: isPartial, rev }
}

t.test('the merge rule: a series never hands out a state older than one it handed out, whatever the arrival order', async () => {
  const state = fc.record({ slot: fc.integer({ min: 0, max: 3 }), rev: fc.integer({ min: 1, max: 6 }), partial: fc.boolean() })
  fc.assert(fc.property(fc.array(state, { maxLength: 40 }), fc.array(state, { maxLength: 20 }), fc.integer({ min: 0, max: 40 }), (live, snapshot, snapshotAt) => {
    const series = new Series('AAPL#1m', 'AAPL', '1m')
    const handed: Bucket[] = []
    const sub = new Subscription('AAPL', ['1m'], (b) => handed.push(b), {}, () => {})
    sub.attach(series)
    series.await()
    const toBucket = (s: { slot: number, rev: number, partial: boolean }): Bucket => bucket(`2025-01-01T00:0${s.slot}:00Z`, s.rev, s.partial)
    live.forEach((s, i) => {
      if (i === snapshotAt) series.applySnapshot(snapshot.map(toBucket))
      series.offer(toBucket(s))
    })
    if (snapshotAt >= live.length) series.applySnapshot(snapshot.map(toBucket))
    const last = new Map<string, Bucket>()
    for (const b of handed) {
      if (!isNewerState(b, last.get(b.timestamp))) return false
      last.set(b.timestamp, b)
    }
    // And the newest state of each bucket is the one held at the end.
    const all = [...live, ...snapshot].map(toBucket)
    for (const [ts, held] of last) {
      if (all.some((b) => b.timestamp === ts && isNewerState(b, held))) return false
    }
    return handed.length === 0 || sub.state === 'live'
  }), { numRuns: 500 })
})

t.test('resume positions: the last one received per series, from events and snapshots, forgotten with the series', async (t) => {
  const positions = new ResumePositions()
  t.same(positions.subscribeFields(['A#1m']), {}, 'no position: nothing to resume from')
  positions.event('A#1m', '900')
  positions.event('A#1m', '800')
  positions.event('B#1m', 'not-an-id')
  positions.snapshot('B#5m', '1200')
  t.ok(positions.has('A#1m'))
  t.notOk(positions.has('B#1m'), 'an id that is not a position is ignored')
  t.same(positions.subscribeFields(['A#1m', 'B#5m', 'C#1m']), { positions: { 'A#1m': '800', 'B#5m': '1200' } }, 'per series, the last position received (a later event may promise less)')
  const reply: SubscribedEvent = { type: 'subscribed', op: 'subscribe', tickers: ['A'], resolutions: ['1m', '5m'], subscriptions: 2, replayed: 0, not_recovered: ['A#5m'] }
  t.ok(positions.recovered(reply, 'A#1m'))
  t.notOk(positions.recovered(reply, 'A#5m'), 'listed as not recovered')
  t.notOk(positions.recovered({ type: 'subscribed', op: 'subscribe', tickers: ['A'], resolutions: ['1m'], subscriptions: 1 }, 'A#1m'), 'a reply to a subscribe that did not resume')
  positions.forget('A#1m')
  t.notOk(positions.has('A#1m'))
})

t.test('event-stream tokens: the SDK writes what the gateway reads, and reads what the gateway writes', async (t) => {
  const series = ['MSFT#1m', 'AAPL#1m', 'AAPL#5m', 'TSLA#1h'] as SeriesKey[]
  const sdk = new ResumePositions()
  sdk.event('AAPL#1m', String(2 ** 48 + 70))
  sdk.event('AAPL#5m', String(2 ** 48 + 65))
  sdk.event('MSFT#1m', String(2 ** 49 + 3))
  const header = sdk.streamHeaders(series)['last-event-id']
  const read = ResumeToken.read(header, series)
  t.same(Object.fromEntries(read), { 'AAPL#1m': 2 ** 48 + 65, 'AAPL#5m': 2 ** 48 + 65, 'MSFT#1m': 2 ** 49 + 3 }, 'per ticker, the lowest of its series; a ticker without one resumes nothing')
  const gateway = new ResumeToken(series, read)
  gateway.advance('TSLA#1h' as SeriesKey, 5000)
  gateway.advance('MSFT#1m' as SeriesKey, 2 ** 49 + 9)
  const back = new ResumePositions()
  for (const key of series) back.streamEvent(key, gateway.text, series.map((k) => k.slice(0, k.indexOf('#'))))
  t.same(back.subscribeFields(series).positions, { 'MSFT#1m': String(2 ** 49 + 9), 'AAPL#1m': String(2 ** 48 + 65), 'AAPL#5m': String(2 ** 48 + 65), 'TSLA#1h': '5000' })
  t.same(ResumeToken.read('1.zz', series).size, 0, 'a token of another selection resumes nothing')
  t.same(ResumeToken.read('1766313305123', series).size, 0, 'nor does an old wall-clock id')
})

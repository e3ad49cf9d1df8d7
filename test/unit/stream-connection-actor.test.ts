import t from 'tap'
import { ConnectionActor } from '../../services/gateway/streaming/connection-actor.js'
import { FloodGuard } from '../../services/gateway/streaming/flood-guard.js'
import { renderHeartbeat, StreamEvent } from '../../services/gateway/streaming/protocol.js'
import { until } from '../helpers/stream-clients.js'
import { recordingSink, sleep, START, testBucket } from '../helpers/stream-fakes.js'

const event = (start: number, rev: number): StreamEvent => new StreamEvent(testBucket(start, rev), 'change', Date.now(), rev - 1)

t.test('states handed over are written at once, several in one write', async (t) => {
  const sink = recordingSink()
  const actor = new ConnectionActor(sink, { recheckMs: 10_000, stallLimitMs: 60_000, now: Date.now })
  t.teardown(() => actor.close('restart'))
  actor.offer([event(START, 1)])
  t.equal(sink.writes.length, 1, 'written during offer, not on a timer')
  t.match(sink.writes[0]?.[0]?.ws, /"rev":1/)
  actor.offer([event(START - 60_000, 1), event(START, 2)])
  t.equal(sink.writes.length, 2)
  t.equal(sink.writes[1]?.length, 2, 'ready together, one write')
  actor.heartbeat(renderHeartbeat(Date.now(), 1))
  t.equal(sink.writes.length, 3, 'the heartbeat is not held back')
})

t.test('a long list (a resume replay) goes out in bounded writes', async (t) => {
  const sink = recordingSink()
  const actor = new ConnectionActor(sink, { recheckMs: 10, stallLimitMs: 60_000, highWaterBytes: 1024, now: Date.now })
  t.teardown(() => actor.close('restart'))
  actor.offer(Array.from({ length: 200 }, (_, i) => event(START - i * 60_000, 1)))
  t.ok(sink.writes.length === 1 && (sink.writes[0]?.length ?? 0) < 200, 'the first write is bounded')
  await until(() => sink.writes.flat().length === 200)
  t.ok(sink.writes.length > 2, 'the rest followed in more writes')
})

t.test('an unwritable socket lets states coalesce, then a stalled client is disconnected', async (t) => {
  const sink = recordingSink()
  let closed = 0
  const actor = new ConnectionActor(sink, { recheckMs: 10, stallLimitMs: 150, now: Date.now, onClose: () => { closed++ } })
  sink.buffered = 1024 * 1024
  for (let rev = 1; rev <= 500; rev++) {
    actor.offer([event(START, rev)])
    actor.offer([event(START - 60_000, rev)])
  }
  t.equal(actor.pending, 2, 'one pending state per bucket')
  await until(() => sink.closedWith !== undefined)
  t.equal(sink.writes.length, 0, 'nothing written while unwritable')
  t.equal(sink.closedWith, 'stalled')
  t.equal(closed, 1)
  t.equal(actor.pending, 0, 'memory released')
})

t.test('writing resumes once the socket drains, with the newest states in one write', async (t) => {
  const sink = recordingSink()
  const actor = new ConnectionActor(sink, { recheckMs: 10, stallLimitMs: 10_000, now: Date.now })
  t.teardown(() => actor.close('restart'))
  sink.buffered = 1024 * 1024
  actor.offer([event(START, 1)])
  actor.offer([event(START - 60_000, 1)])
  await sleep(40)
  t.equal(sink.writes.length, 0)
  actor.offer([event(START, 2)])
  sink.buffered = 0
  await until(() => sink.writes.length === 1)
  t.equal(sink.writes[0]?.length, 2, 'held back together, sent together')
  t.match(sink.writes[0]?.map((r) => r.ws).join(), /"rev":2/)
})

t.test('a client that keeps reading is not cut as stalled, though every write fills its buffer again', async (t) => {
  const sink = recordingSink()
  const fill = sink.writeOne
  // Every write leaves the socket over the high-water mark until the client reads.
  sink.writeOne = (rendered) => {
    fill(rendered)
    sink.buffered = 100 * 1024
  }
  // A clock the test moves, so a slow machine cannot make the rounds look like a stall.
  let clock = Date.now()
  const actor = new ConnectionActor(sink, { recheckMs: 10, stallLimitMs: 100, now: () => clock })
  t.teardown(() => actor.close('restart'))
  // Each round the client has read everything, then two buckets change.
  for (let i = 0; i < 40; i++) {
    sink.buffered = 0
    actor.offer([event(START - 2 * i * 60_000, 1)])
    actor.offer([event(START - (2 * i + 1) * 60_000, 1)])
    clock += 10
    await sleep(15)
  }
  t.equal(sink.closedWith, undefined, 'still connected')
  sink.buffered = 0
  clock += 10
  await until(() => actor.pending === 0)
  t.equal(sink.writes.flat().length, 80, 'every bucket delivered')
})

t.test('a drain sends held-back states at once, and is ignored when nothing was held back', async (t) => {
  const sink = recordingSink()
  const actor = new ConnectionActor(sink, { recheckMs: 200, stallLimitMs: 10_000, now: Date.now })
  t.teardown(() => actor.close('restart'))
  actor.drained()
  t.equal(sink.writes.length, 0, 'nothing held back, nothing written')
  sink.buffered = 1024 * 1024
  actor.offer([event(START, 1)])
  actor.drained()
  t.equal(sink.writes.length, 0, 'still above the high-water mark')
  sink.buffered = 0
  actor.drained()
  t.equal(sink.writes.length, 1, 'written on the drain, not at the next wake-up')
})

t.test('newest state wins whatever the arrival order; past and current buckets are two entries', async (t) => {
  const sink = recordingSink()
  // A clock inside START's minute, so the current bucket renders as partial whenever the test runs.
  const actor = new ConnectionActor(sink, { recheckMs: 10_000, stallLimitMs: 60_000, now: () => START + 30_000 })
  t.teardown(() => actor.close('restart'))
  sink.buffered = 1024 * 1024
  for (const rev of [5, 9, 3]) actor.offer([event(START, rev)])
  actor.offer([event(START - 120_000, 2)])
  t.equal(actor.pending, 2)
  sink.buffered = 0
  actor.close('restart')
  t.equal(sink.writes.length, 1, 'a restart sends what was waiting, in one write')
  const sent = sink.writes[0]?.map((r) => JSON.parse(r.ws) as { type: string, bucket: { rev: number } }) ?? []
  t.same(sent.map((e) => e.bucket.rev).sort(), [2, 9])
  t.same(sent.map((e) => e.type).sort(), ['bucket_update', 'partial_bucket'])
})

t.test('leaving a series forgets its held-back states', async (t) => {
  const sink = recordingSink()
  const actor = new ConnectionActor(sink, { recheckMs: 10_000, stallLimitMs: 60_000, now: Date.now })
  t.teardown(() => actor.close('restart'))
  sink.buffered = 1024 * 1024
  actor.offer([event(START, 1)])
  actor.offer([event(START, 2)])
  t.equal(actor.pending, 1)
  actor.forget(new Set(['AAPL#1m']))
  t.equal(actor.pending, 0)
})

t.test('a final event of the same rev replaces the change; its id is its series position', async (t) => {
  const now = START + 30_000
  const past = START - 60_000
  const change = new StreamEvent(testBucket(past, 4, past + 30_000), 'change', now, 3)
  const final = new StreamEvent(testBucket(past, 4, past + 30_000), 'final', now, 3)
  t.ok(final.supersedes(change))
  t.equal(final.time, START)
  t.match(final.render(now).ws, /^\{"type":"bucket_update","id":"3",/)
  t.match(final.render(now).sse.toString(), /^event: bucket_update\ndata: \{/, 'an event stream\'s id is its token, which the sink writes')
})

t.test('flood guard: a burst is accepted, then drops with one warning a second, then disconnect', async (t) => {
  const guard = new FloodGuard(0, { burst: 5, perSecond: 1, maxDropped: 3 })
  const verdicts = Array.from({ length: 9 }, () => guard.check(0))
  t.same(verdicts, ['accept', 'accept', 'accept', 'accept', 'accept', 'drop-and-warn', 'drop', 'drop', 'disconnect'])
  t.equal(new FloodGuard(0, { burst: 1, perSecond: 1 }).check(5000), 'accept', 'tokens refill')
})

t.test('flood guard: drops are a rate, so a long-lived client that overruns now and then is never disconnected', async (t) => {
  const guard = new FloodGuard(0, { burst: 5, perSecond: 1, maxDropped: 3, dropWindowMs: 10_000 })
  // One burst a minute, each one message past the burst allowance: one drop a minute.
  for (let minute = 0; minute < 60; minute++) {
    const now = minute * 60_000
    const verdicts = Array.from({ length: 6 }, () => guard.check(now))
    t.not(verdicts.at(-1), 'disconnect', `burst ${minute} is throttled, not cut`)
    if (verdicts.at(-1) === 'disconnect') break
  }
  // A real flood still is: more than 3 drops within the window.
  const flooded = Array.from({ length: 12 }, (_, i) => guard.check(3_600_000 + i))
  t.equal(flooded.at(-1), 'disconnect', 'a flood right after is disconnected')
  // Drops spread over more than the window never add up to a disconnect.
  const steady = new FloodGuard(0, { burst: 1, perSecond: 1, maxDropped: 3, dropWindowMs: 10_000 })
  const spread: string[] = []
  for (let i = 0; i < 100; i++) spread.push(steady.check(i * 4_000), steady.check(i * 4_000))
  t.notOk(spread.includes('disconnect'), 'one drop every 4 s with at most 3 per 10 s is only throttled')
})

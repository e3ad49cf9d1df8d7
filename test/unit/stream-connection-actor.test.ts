import t from 'tap'
import { ConnectionActor } from '../../services/gateway/streaming/connection-actor.js'
import type { CloseReason } from '../../services/gateway/streaming/limits.js'
import { FloodGuard } from '../../services/gateway/streaming/limits.js'
import type { Sink } from '../../services/gateway/streaming/sink.js'
import { renderHeartbeat, type Rendered, StreamEvent } from '../../services/gateway/streaming/stream-event.js'
import type { Bucket } from '../../shared/timeseries/index.js'

const START = Math.floor(Date.now() / 60_000) * 60_000

function bucket (start: number, rev: number): Bucket {
  const key = { ts: start, id: 'a' }
  return {
    ticker: 'AAPL',
    resolution: '1m',
    start,
    open: 0,
    high: 0,
    low: 0,
    close: 0,
    count: rev,
    sum: 0,
    label_counts: { positive: 0, neutral: rev, negative: 0 },
    sources: ['test'],
    first: key,
    last: key,
    rev,
    last_updated: Date.now()
  }
}

/** A sink that records writes and whose buffer the test controls. */
function fakeSink (): Sink & { writes: Rendered[][], buffered: number, closedWith: CloseReason | undefined } {
  const sink = {
    writes: [] as Rendered[][],
    buffered: 0,
    closedWith: undefined as CloseReason | undefined,
    write: (events: readonly Rendered[]) => { sink.writes.push([...events]) },
    bufferedAmount: () => sink.buffered,
    keepAlive: () => {},
    close: (reason: CloseReason) => { sink.closedWith = reason }
  }
  return sink
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

t.test('a burst becomes one flush with the newest state; later updates wait for the debounce', async (t) => {
  const sink = fakeSink()
  const actor = new ConnectionActor(sink, { debounceMs: 50, stallLimitMs: 1000, now: Date.now })
  for (let rev = 1; rev <= 1000; rev++) actor.offer(new StreamEvent(bucket(START, rev), 'change', Date.now()))
  await sleep(20)
  t.equal(sink.writes.length, 1)
  t.equal(sink.writes[0]?.length, 1)
  t.match(sink.writes[0]?.[0]?.ws, /"rev":1000/)
  actor.offer(new StreamEvent(bucket(START, 1001), 'change', Date.now()))
  actor.offer(new StreamEvent(bucket(START - 60_000, 7), 'change', Date.now()))
  actor.heartbeat(renderHeartbeat(Date.now(), 1))
  t.equal(sink.writes.length, 1, 'not before the debounce')
  await sleep(120)
  t.equal(sink.writes.length, 2)
  t.equal(sink.writes[1]?.length, 3, 'both buckets and the heartbeat in one flush')
  actor.close('restart')
  t.equal(sink.closedWith, 'restart')
})

t.test('an unwritable socket lets states coalesce, then a stalled client is disconnected', async (t) => {
  const sink = fakeSink()
  let closed = 0
  const actor = new ConnectionActor(sink, { debounceMs: 10, stallLimitMs: 150, now: Date.now, onClose: () => { closed++ } })
  sink.buffered = 1024 * 1024
  for (let rev = 1; rev <= 500; rev++) {
    actor.offer(new StreamEvent(bucket(START, rev), 'change', Date.now()))
    actor.offer(new StreamEvent(bucket(START - 60_000, rev), 'change', Date.now()))
  }
  await sleep(60)
  t.equal(sink.writes.length, 0, 'nothing written while unwritable')
  t.equal(actor.pending, 2, 'one pending state per bucket')
  await sleep(250)
  t.equal(sink.closedWith, 'stalled')
  t.equal(closed, 1)
  t.equal(actor.pending, 0, 'memory released')
})

t.test('writing resumes once the socket drains', async (t) => {
  const sink = fakeSink()
  const actor = new ConnectionActor(sink, { debounceMs: 10, stallLimitMs: 10_000, now: Date.now })
  sink.buffered = 1024 * 1024
  actor.offer(new StreamEvent(bucket(START, 1), 'change', Date.now()))
  await sleep(40)
  t.equal(sink.writes.length, 0)
  sink.buffered = 0
  actor.offer(new StreamEvent(bucket(START, 2), 'change', Date.now()))
  await sleep(40)
  t.equal(sink.writes.length, 1)
  t.match(sink.writes[0]?.[0]?.ws, /"rev":2/)
  actor.close('restart')
})

t.test('a drain sends held-back states at once, and is ignored when nothing was held back', async (t) => {
  const sink = fakeSink()
  const actor = new ConnectionActor(sink, { debounceMs: 200, stallLimitMs: 10_000, now: Date.now })
  actor.drained()
  t.equal(sink.writes.length, 0, 'nothing held back, nothing written')
  sink.buffered = 1024 * 1024
  actor.offer(new StreamEvent(bucket(START, 1), 'change', Date.now()))
  await sleep(20)
  t.equal(sink.writes.length, 0)
  actor.drained()
  t.equal(sink.writes.length, 0, 'still above the high-water mark')
  sink.buffered = 0
  actor.drained()
  t.equal(sink.writes.length, 1, 'written on the drain, not 200 ms later')
  actor.close('restart')
})

t.test('flood guard: a burst is accepted, then drops with one warning a second, then disconnect', async (t) => {
  const guard = new FloodGuard(0, { burst: 5, perSecond: 1, maxDropped: 3 })
  const verdicts = Array.from({ length: 9 }, () => guard.check(0))
  t.same(verdicts, ['accept', 'accept', 'accept', 'accept', 'accept', 'drop-and-warn', 'drop', 'drop', 'disconnect'])
  t.equal(new FloodGuard(0, { burst: 1, perSecond: 1 }).check(5000), 'accept', 'tokens refill')
})

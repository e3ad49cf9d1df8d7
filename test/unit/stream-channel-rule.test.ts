import t from 'tap'
import { ChannelHub } from '../../services/gateway/streaming/channel-hub.js'
import { renderEvent, type Rendered } from '../../services/gateway/streaming/protocol.js'
import type { SeriesCache } from '../../services/gateway/series-cache.js'
import type { BucketEvent } from '../../shared/ports/bus.js'
import { until } from '../helpers/stream-clients.js'
import { recordingSink, sleep, START, testBucket } from '../helpers/stream-fakes.js'

// The per-bucket rule, decided once per channel for all its watchers.

const revs = (write: Rendered[] | undefined): number[] => (write ?? []).map((r) => (JSON.parse(r.ws) as { bucket: { rev: number } }).bucket.rev)

/**
 * A hub on a series cache that hands the test the channel's listener, and a clock the test
 * moves: a trailing send is due only once the clock has passed it, however slow the machine.
 */
async function setup (t: { teardown: (fn: () => unknown) => void }, debounceMs: number, watchers = 1) {
  let listener: ((event: BucketEvent) => void) | undefined
  const cache = {
    watch: async (_ticker: string, _resolution: string, l: (event: BucketEvent) => void) => {
      listener = l
      return () => { listener = undefined }
    }
  } as unknown as SeriesCache
  const clock = { now: START + 30_000 }
  let coalesced = 0
  const hub = new ChannelHub({
    cache,
    now: () => clock.now,
    maxConnections: 100,
    heartbeatMs: 60_000,
    debounceMs,
    maxBufferedBytes: 1024 * 1024,
    onCoalesced: () => { coalesced++ }
  })
  t.teardown(() => hub.shutdown())
  const sinks = Array.from({ length: watchers }, () => recordingSink())
  const actors = sinks.map((sink) => hub.open(sink, 'ws', () => {}))
  for (const actor of actors) await hub.join(actor, 'AAPL#1m')
  const publish = (start: number, rev: number): void => listener?.({ kind: 'change', bucket: testBucket(start, rev, start + 1000 + rev), acceptedAt: clock.now })
  return { hub, sinks, actors, clock, publish, coalesced: () => coalesced }
}

t.test('an update goes out at once when its bucket was not sent within the debounce', async (t) => {
  const { sinks, publish } = await setup(t, 10_000)
  publish(START, 1)
  t.equal(sinks[0]?.writes.length, 1, 'written during the publish, not on a timer')
  t.same(revs(sinks[0]?.writes[0]), [1])
})

t.test('different buckets never wait for each other', async (t) => {
  const { sinks, publish, hub } = await setup(t, 10_000)
  publish(START, 1)
  publish(START - 60_000, 3)
  t.equal(sinks[0]?.writes.length, 2, 'two buckets, two immediate writes')
  publish(START, 2)
  t.equal(sinks[0]?.writes.length, 2, 'the same bucket again within the debounce waits')
  publish(START - 120_000, 8)
  t.equal(sinks[0]?.writes.length, 3, 'a third bucket does not wait behind the waiting one')
  t.equal(hub.stats().pending, 1, 'one state waiting, in the channel')
})

t.test('a burst to one bucket: the first state at once, one trailing send with the newest, the same for every watcher', async (t) => {
  const { sinks, publish, clock, coalesced } = await setup(t, 50, 3)
  for (let rev = 1; rev <= 1000; rev++) publish(START, rev)
  for (const sink of sinks) t.same(sink.writes.map(revs), [[1]])
  t.equal(coalesced(), 998, 'coalesced once per channel, not once per watcher')
  clock.now += 50
  await until(() => sinks.every((sink) => sink.writes.length === 2))
  for (const sink of sinks) t.same(sink.writes.map(revs), [[1], [1000]], 'the trailing send carries the newest state')
  t.equal(sinks[0]?.writes[1]?.[0], sinks[2]?.writes[1]?.[0], 'one rendering shared by every watcher')
  publish(START, 1001)
  t.equal(sinks[0]?.writes.length, 2, 'within a debounce of the trailing send it waits again')
  clock.now += 50
  await until(() => sinks[0]?.writes.length === 3)
  await sleep(30)
  t.equal(sinks[0]?.writes.length, 3, 'nothing more to send')
  clock.now += 60
  publish(START, 1002)
  t.equal(sinks[0]?.writes.length, 4, 'a debounce after the last send, the bucket goes out at once again')
})

t.test('trailing sends due at the same moment share one write, oldest event first', async (t) => {
  const { sinks, publish, clock } = await setup(t, 60)
  publish(START, 1)
  publish(START - 60_000, 1)
  publish(START, 2)
  publish(START - 60_000, 2)
  t.equal(sinks[0]?.writes.length, 2)
  clock.now += 60
  await until(() => sinks[0]?.writes.length === 3)
  t.same(revs(sinks[0]?.writes[2]), [2, 2], 'both trailing states in one write')
  const ids = sinks[0]?.writes[2]?.map((r) => Number((JSON.parse(r.ws) as { id: string }).id)) ?? []
  t.ok((ids[0] ?? 0) <= (ids[1] ?? 0), 'event ids rise within the write')
})

t.test('a newer state waiting is never replaced by an older one', async (t) => {
  const { sinks, publish, clock } = await setup(t, 40)
  publish(START, 1)
  for (const rev of [5, 9, 3]) publish(START, rev)
  clock.now += 40
  await until(() => sinks[0]?.writes.length === 2)
  t.same(revs(sinks[0]?.writes[1]), [9])
})

t.test('a watcher that joins while a state waits gets the trailing send; one that left does not', async (t) => {
  const { hub, sinks, actors, publish, clock } = await setup(t, 40, 2)
  publish(START, 1)
  publish(START, 2)
  const late = recordingSink()
  await hub.join(hub.open(late, 'ws', () => {}), 'AAPL#1m')
  hub.leave(actors[1]!, ['AAPL#1m'])
  clock.now += 40
  await until(() => late.writes.length === 1 && sinks[0]?.writes.length === 2)
  t.same(revs(late.writes[0]), [2])
  await sleep(20)
  t.same(sinks[1]?.writes.map(revs), [[1]], 'the watcher that left got only what was sent before')
})

t.test('over the gateway-wide buffer budget, the connections holding the most are cut until it is met', async (t) => {
  const hub = new ChannelHub({
    // No channel is joined here: the budget concerns connections only.
    cache: undefined as unknown as SeriesCache,
    now: Date.now,
    maxConnections: 10,
    heartbeatMs: 60_000,
    debounceMs: 100,
    maxBufferedBytes: 1024 * 1024
  })
  t.teardown(() => hub.shutdown())
  const sinks = [recordingSink(), recordingSink(), recordingSink()]
  const closed: number[] = []
  const actors = sinks.map((sink, i) => hub.open(sink, 'ws', () => { closed.push(i) }))
  const reply = renderEvent('pong', { timestamp: 'now' })

  sinks[0]!.buffered = 500 * 1024
  actors[0]!.reply(reply)
  sinks[1]!.buffered = 300 * 1024
  actors[1]!.reply(reply)
  t.same(closed, [], 'under the budget nobody is cut')

  sinks[2]!.buffered = 700 * 1024
  actors[2]!.reply(reply)
  t.same(closed, [2], 'the largest backlog is cut')
  t.equal(sinks[2]!.closedWith, 'stalled', 'with the reconnect code of a slow client')
  t.equal(hub.stats().transports.ws?.connections, 2, 'the others stay')

  // A backlog that drained without a write is found by the recount, not cut for.
  sinks[0]!.buffered = 0
  sinks[1]!.buffered = 900 * 1024
  actors[1]!.reply(reply)
  t.same(closed, [2], 'the total is recounted before anyone is cut')
})

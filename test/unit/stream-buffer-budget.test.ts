import t from 'tap'
import { ChannelHub } from '../../services/gateway/streaming/channel-hub.js'
import { renderEvent } from '../../services/gateway/streaming/protocol.js'
import type { SeriesCache } from '../../services/gateway/series-cache.js'
import { recordingSink } from '../helpers/stream-fakes.js'

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

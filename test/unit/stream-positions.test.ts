import fc from 'fast-check'
import t from 'tap'
import { Channel } from '../../services/gateway/streaming/channel.js'
import { ConnectionActor } from '../../services/gateway/streaming/connection-actor.js'
import { StreamEvent } from '../../services/gateway/streaming/protocol.js'
import { vouchInOrder } from '../../services/gateway/streaming/resume.js'
import { feedableCache, manualScheduler, recordingSink, START, testBucket, wakeDue } from '../helpers/stream-fakes.js'

/*
 * The position a client holds is a promise: every state of the series up to it has reached
 * the client. Whatever the channel holds back for its debounce and the connection for
 * backpressure, and wherever a write is cut, the last position received must keep it.
 */

t.test('positions in one write promise only what precedes them', async (t) => {
  const state = (slot: number, rev: number, position: number): StreamEvent => new StreamEvent(testBucket(START + slot * 60_000, rev), 'change', START, position)
  const out = vouchInOrder([state(0, 5, 9), state(1, 7, 9), state(0, 8, 9)], (event) => event.bucket.rev)
  t.same(out.map((event) => event.position), [6, 7, 9], 'each below the next state of the series still to come')
  const waiting = vouchInOrder([state(0, 8, 9)], (event) => event.bucket.rev, () => 4)
  t.same(waiting.map((event) => event.position), [3], 'and below a state still held back')
  const replaced = vouchInOrder([state(1, 6, 9), state(0, 8, 9)], (event) => event.bucket.rev === 8 ? 2 : event.bucket.rev)
  t.same(replaced.map((event) => event.position), [1, 9], 'a state that replaced a waiting one counts from the first it replaced')
})

type Step = { kind: 'fold', slots: number[] } | { kind: 'tick', ms: number } | { kind: 'pressure', on: boolean }

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('fold' as const), slots: fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pressure' as const), on: fc.boolean() }) }
)

t.test('through debounce, backpressure and cut writes, the last position received never promises a state not received', async () => {
  fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), (steps) => {
    let now = START
    const scheduler = manualScheduler()
    const { cache, feed } = feedableCache()
    const channel = new Channel(cache, 'AAPL', '1m', { debounceMs: 250, now: () => now, scheduler })
    const sink = recordingSink()
    const actor = new ConnectionActor(sink, { recheckMs: 50, stallLimitMs: 1e9, highWaterBytes: 1000, now: () => now, scheduler })
    channel.watchers.add(actor)
    const history: Array<{ slot: number, rev: number }> = []
    let rev = 0
    let position = 0
    const wake = (): void => wakeDue(scheduler, now)
    for (const s of steps) {
      if (s.kind === 'fold') {
        rev++
        s.slots.forEach((slot, i) => {
          history.push({ slot, rev })
          // As the series cache vouches (series-position.ts): rev − 1, and rev on the fold's last state.
          const lastAtRev = i === s.slots.length - 1
          position = Math.max(position, lastAtRev ? rev : rev - 1)
          feed({ kind: 'change', bucket: testBucket(START + slot * 60_000, rev, now), ...(lastAtRev ? { lastAtRev: true as const } : {}) }, position)
        })
      } else if (s.kind === 'tick') {
        now += s.ms
        wake()
      } else {
        sink.buffered = s.on ? 10_000 : 0
        wake()
      }
    }
    sink.buffered = 0
    for (let i = 0; i < 5; i++) {
      now += 1000
      wake()
    }
    // Every prefix of what was written, as if the connection were cut right after it.
    const received = sink.writes.flat()
    const held = new Map<string, number>()
    for (const rendered of received) {
      const message = JSON.parse(rendered.ws) as { id: string, bucket: { timestamp: string, rev: number } }
      held.set(message.bucket.timestamp, Math.max(held.get(message.bucket.timestamp) ?? 0, message.bucket.rev))
      const promised = Number(message.id)
      for (const state of history) {
        if (state.rev > promised) continue
        const timestamp = new Date(START + state.slot * 60_000).toISOString().replace('.000Z', 'Z')
        if ((held.get(timestamp) ?? 0) < state.rev) return false
      }
    }
    // And once everything went out, the client holds the newest state of every bucket.
    const newest = new Map<number, number>()
    for (const state of history) newest.set(state.slot, state.rev)
    for (const [slot, want] of newest) {
      const timestamp = new Date(START + slot * 60_000).toISOString().replace('.000Z', 'Z')
      if (held.get(timestamp) !== want) return false
    }
    return true
  }), { numRuns: 400 })
})

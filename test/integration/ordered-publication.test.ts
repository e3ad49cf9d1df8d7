import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { MemoryBus } from '../../shared/adapters/memory/memory-bus.js'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import { RedisBus } from '../../shared/adapters/redis/redis-bus.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import { armFaults } from '../../shared/fault-points.js'
import type { BucketEvent, Bus } from '../../shared/ports/bus.js'
import type { HotState } from '../../shared/ports/hot-state.js'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { seriesKey } from '../../shared/timeseries/keys.js'
import { foldBatch } from '../../services/aggregator/fold-batch.js'
import { MemoryArchive } from '../helpers/memory-archive.js'
import { startRedisServer } from '../helpers/redis-server.js'

/*
 * Every series channel carries the states of its buckets in position order: the fold
 * publishes its changes itself, atomically with them, so no worker can publish an older
 * state after a newer one, however slow it is after its fold.
 */

const server = await startRedisServer(t)

interface Pulse {
  hot: HotState
  bus: Bus
  /** Another worker's hot state on the same store (the memory state has one process). */
  second: HotState
}

async function redisPulse (t: Test): Promise<Pulse> {
  const env = `ordered-${randomUUID().slice(0, 8)}`
  const hot = new RedisHotState({ connection: server.url, env, dedupeWindowMs: 86_400_000 })
  const second = new RedisHotState({ connection: server.url, env, dedupeWindowMs: 86_400_000 })
  const bus = new RedisBus({ url: server.url, env })
  t.teardown(async () => { await Promise.all([hot.close(), second.close(), bus.close()]) })
  return { hot, second, bus }
}

async function memoryPulse (t: Test): Promise<Pulse> {
  const bus = new MemoryBus()
  const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000, bus })
  t.teardown(async () => { await bus.close() })
  return { hot, second: hot, bus }
}

function item (id: string, ts: number): ScoredItem {
  const score = Math.round(Math.sin(ts + id.length) * 1000) / 1000
  return { id, ticker: 'AAPL', ts, score, label: labelFor(score), source: 'tiingo' }
}

/** The revs heard on AAPL#1m, in arrival order. */
async function listen (bus: Bus): Promise<number[]> {
  const revs: number[] = []
  await bus.subscribe(seriesKey('AAPL', '1m'), (event: BucketEvent) => { revs.push(event.bucket.rev) })
  return revs
}

async function heard (revs: number[], count: number): Promise<void> {
  for (let i = 0; i < 200 && revs.length < count; i++) await sleep(10)
}

function strictlyIncreasing (revs: readonly number[]): boolean {
  return revs.every((rev, i) => i === 0 || rev > (revs[i - 1] as number))
}

for (const [name, open] of [['redis', redisPulse], ['memory', memoryPulse]] as const) {
  t.test(`${name}: a worker slow after its fold cannot put its state on the channel after a later one`, async (t) => {
    const { hot, second, bus } = await open(t)
    const archive = new MemoryArchive()
    const revs = await listen(bus)
    // One minute bucket for both batches, so each fold gives it one new position.
    const ts = Math.floor(Date.now() / 60_000) * 60_000 + 30_000
    armFaults('fold.after=delay:400@1')
    t.teardown(() => armFaults(''))

    const slow = foldBatch({ hot, archive, now: Date.now }, { id: 'slow', acceptedAt: Date.now(), items: [item('a1', ts)] })
    // The first fold is committed (and the first worker is held right after it) before the second begins.
    for (let i = 0; i < 200; i++) {
      const [bucket] = await hot.get([{ ticker: 'AAPL', resolution: '1m', start: ts - 30_000 }])
      if (bucket !== undefined) break
      await sleep(5)
    }
    const fast = foldBatch({ hot: second, archive, now: Date.now }, { id: 'fast', acceptedAt: Date.now(), items: [item('a2', ts)] })
    await Promise.all([slow, fast])
    await heard(revs, 2)

    t.equal(revs.length, 2, 'both states reached the channel')
    t.ok(strictlyIncreasing(revs), `positions arrive in order: ${revs.join(', ')}`)
  })

  t.test(`${name}: two workers folding one ticker at once publish its states in position order`, async (t) => {
    const { hot, second, bus } = await open(t)
    const archive = new MemoryArchive()
    const revs = await listen(bus)
    const ts = Math.floor(Date.now() / 60_000) * 60_000 + 30_000
    const batches = Array.from({ length: 40 }, (_, i) => ({ id: `b${i}`, acceptedAt: Date.now(), items: [item(`i${i}`, ts)] }))
    // Four batches in flight per worker, as BullMQ runs them.
    const worker = async (hotState: HotState, mine: typeof batches): Promise<void> => {
      for (let i = 0; i < mine.length; i += 4) {
        await Promise.all(mine.slice(i, i + 4).map(async (batch) => await foldBatch({ hot: hotState, archive, now: Date.now }, batch)))
      }
    }
    await Promise.all([worker(hot, batches.filter((_, i) => i % 2 === 0)), worker(second, batches.filter((_, i) => i % 2 === 1))])
    await heard(revs, batches.length)

    t.equal(revs.length, batches.length, 'every fold published its state once')
    t.ok(strictlyIncreasing(revs), 'positions arrive strictly increasing')
    const [bucket] = await hot.get([{ ticker: 'AAPL', resolution: '1m', start: ts - 30_000 }])
    t.equal(revs.at(-1), bucket?.rev, 'the last state heard is the stored one')
  })
}

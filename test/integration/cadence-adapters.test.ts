import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import { Redis } from 'ioredis'
import t from 'tap'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import { RedisKeys, dirtyMember } from '../../shared/adapters/redis/keys.js'
import { defineScripts } from '../../shared/adapters/redis/lua-scripts.js'
import { labelFor } from '../../shared/timeseries/bucket.js'
import { type BucketRef } from '../../shared/timeseries/keys.js'
import { DURATION_MS, RESOLUTIONS, bucketEnd, bucketStart } from '../../shared/timeseries/resolutions.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { foldWithTerm } from '../helpers/fold-with-term.js'

const server = await startRedisServer(t)
const redis = new Redis(server.url)
t.teardown(() => redis.quit())
defineScripts(redis)

/** Both clocks (the test's and Redis's) read within this of each other; cases closer to an edge are skipped. */
const MARGIN_MS = 2000

/**
 * The write cadence exists twice: MemoryHotState.takeDirty (TypeScript) and
 * lua/take-dirty.lua. For any dirty bucket, any time of its last write and any cadence,
 * both must agree on whether the bucket is due: written a cadence ago or more, or ended
 * since its last write.
 */
t.test('the write cadence: the memory hot state and take-dirty.lua agree on what is due', async (t) => {
  const scenario = fc.record({
    resolution: fc.constantFrom(...RESOLUTIONS),
    bucketsBack: fc.integer({ min: 0, max: 3 }),
    writtenAgoMs: fc.integer({ min: 0, max: 2 * 86_400_000 }),
    cadenceMs: fc.option(fc.integer({ min: 0, max: 2 * 3_600_000 }), { nil: undefined })
  })
  let compared = 0
  await fc.assert(fc.asyncProperty(scenario, async ({ resolution, bucketsBack, writtenAgoMs, cadenceMs }) => {
    const now = Date.now()
    const start = bucketStart(now, resolution) - bucketsBack * DURATION_MS[resolution]
    const end = bucketEnd(start, resolution)
    const writtenAt = now - writtenAgoMs
    const near = (a: number, b: number): boolean => Math.abs(a - b) < MARGIN_MS
    if (near(end, now) || near(writtenAt, end) || (cadenceMs !== undefined && near(writtenAt + cadenceMs, now))) return
    const ref: BucketRef = { ticker: 'AAPL', resolution, start }
    const cadence = cadenceMs === undefined ? undefined : { [resolution]: cadenceMs }

    // Memory: written (marked clean) at writtenAt, changed again, asked at now.
    let clock = writtenAt
    const memory = new MemoryHotState({ dedupeWindowMs: 86_400_000, createdAt: 0, now: () => clock })
    const fold = async (id: string): Promise<void> => {
      await foldWithTerm(memory, 'AAPL', [{ id, ticker: 'AAPL', ts: start + 1, score: 0.2, label: labelFor(0.2), source: 'tiingo' }], { now: clock })
    }
    await fold('first')
    await memory.markClean(await memory.takeDirty(Infinity))
    await fold('second')
    clock = Date.now()
    const memoryDue = (await memory.takeDirty(Infinity, cadence)).some((b) => b.resolution === resolution && b.start === start)

    // Redis: the same bucket dirty, its last write at writtenAt, through the script.
    const keys = new RedisKeys(`c${randomUUID().slice(0, 8)}`)
    const member = dirtyMember(ref)
    await redis.zadd(keys.dirty('AAPL'), 0, member)
    await redis.zadd(keys.written('AAPL'), writtenAt, member)
    const cadenceArgs = cadenceMs === undefined ? [] : [resolution, DURATION_MS[resolution], cadenceMs]
    const reply = await redis.pulseTakeDirty(3, keys.dirty('AAPL'), keys.written('AAPL'), keys.dirtyGen('AAPL'), 10, 60_000, cadenceArgs.length / 3, ...cadenceArgs)
    const redisDue = reply.slice(2).includes(member)
    compared++
    if (memoryDue !== redisDue) throw new Error(`${resolution} ${bucketsBack} back, written ${writtenAgoMs} ms ago, cadence ${String(cadenceMs)}: memory ${memoryDue}, redis ${redisDue}`)
  }), { numRuns: 300 })
  t.ok(compared > 100, `${compared} cases compared`)
})

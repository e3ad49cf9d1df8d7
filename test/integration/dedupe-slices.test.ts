import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import type { HotState } from '../../shared/ports/hot-state.js'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { dedupeSliceMs } from '../../shared/timeseries/dedupe.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { foldWithTerm } from '../helpers/fold-with-term.js'

const WINDOW = 24 * 3_600_000
const HOUR = 3_600_000

function items (prefix: string, count: number, ts: number): ScoredItem[] {
  return Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${i}-${'x'.repeat(i % 100)}`, ticker: 'AAPL', ts: ts - i, score: 0.2, label: labelFor(0.2), source: 'tiingo' }))
}

/** Folds, loading what the hot state asks for (nothing is archived here: known-empty). */
async function fold (hot: HotState, batch: ScoredItem[], now: number): Promise<{ changed: number, duplicates: number }> {
  for (;;) {
    const outcome = await foldWithTerm(hot, 'AAPL', batch, { now })
    if (outcome.kind === 'applied') return { changed: outcome.changed.length, duplicates: outcome.duplicates }
    await hot.seed(outcome.refs, [])
  }
}

async function adapters (t: Test): Promise<Array<[string, HotState]>> {
  const server = await startRedisServer(t)
  const redis = new RedisHotState({ connection: server.url, env: `t${randomUUID().slice(0, 8)}`, dedupeWindowMs: WINDOW })
  t.teardown(async () => await redis.close())
  return [['memory', new MemoryHotState({ dedupeWindowMs: WINDOW })], ['redis', redis]]
}

t.test('dedupe holds across slices for the whole window, in both hot states', async (t) => {
  t.ok(dedupeSliceMs(WINDOW) < 20 * HOUR, 'the window spans several slices')
  for (const [name, hot] of await adapters(t)) {
    const now = Date.now()
    const early = now - 20 * HOUR
    const batch = items('s', 50, early)
    t.same(await fold(hot, batch, early), { changed: 8, duplicates: 0 }, `${name}: first copies counted 20 h ago`)
    t.same(await fold(hot, batch, early + 5 * HOUR), { changed: 0, duplicates: 50 }, `${name}: 5 h later, in another slice, all duplicates`)
    t.same(await fold(hot, batch, now), { changed: 0, duplicates: 50 }, `${name}: 20 h later, all duplicates`)
    t.equal(await hot.dedupeEntries(['AAPL'], now), 50, `${name}: one fingerprint per item`)

    const old = now - WINDOW - 2 * dedupeSliceMs(WINDOW)
    const forgotten = items('o', 10, now - HOUR)
    await fold(hot, forgotten, old)
    t.same(await fold(hot, forgotten, now), { changed: 8, duplicates: 0 }, `${name}: items older than the window and its last slice are forgotten`)
  }
})

t.test('dedupe survives a Redis restart with AOF', async (t) => {
  const server = await startRedisServer(t, { aof: true })
  const env = `t${randomUUID().slice(0, 8)}`
  const before = new RedisHotState({ connection: server.url, env, dedupeWindowMs: WINDOW })
  const now = Date.now()
  const batch = items('r', 200, now - HOUR)
  t.same(await fold(before, batch, now), { changed: 8, duplicates: 0 })
  await before.close()

  await server.kill()
  await server.restart()
  const after = new RedisHotState({ connection: server.url, env, dedupeWindowMs: WINDOW })
  t.teardown(async () => await after.close())
  t.same(await fold(after, batch, Date.now()), { changed: 0, duplicates: 200 }, 'every item is still known after the crash and restart')
  t.equal(await after.dedupeEntries(['AAPL'], Date.now()), 200)
})

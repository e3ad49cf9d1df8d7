/**
 * Bytes of Redis memory per remembered item: folds items of one ticker through
 * RedisHotState into a redis-server this script starts on a free port, then reads
 * `MEMORY USAGE` of the dedupe slice. The sizing rule in docs/architecture.md ("Dedupe memory") uses this figure.
 * Run: `npx tsx bench/dedupe-memory.bench.ts`.
 */
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { RedisHotState } from '../shared/adapters/redis/redis-hot-state.js'
import { RedisKeys } from '../shared/adapters/redis/keys.js'
import { labelFor, type ScoredItem } from '../shared/timeseries/bucket.js'
import { dedupeSlices } from '../shared/timeseries/dedupe.js'
import { startRedisServer } from '../test/helpers/redis-server.js'
import { printTable } from './table.js'
import { foldWithTerm } from '../test/helpers/fold-with-term.js'

const SIZES = [10_000, 100_000, 300_000]
const BATCH = 1000
const WINDOW = 86_400_000

/** Item ids as producers send them: a source prefix and a long article id. */
function batchOf (from: number, size: number, now: number): ScoredItem[] {
  return Array.from({ length: size }, (_, i) => ({
    id: `tiingo:article:${randomUUID()}:${from + i}`, ticker: 'AAPL', ts: now - 1000, score: 0.1, label: labelFor(0.1), source: 'tiingo'
  }))
}

const cleanups: Array<() => unknown> = []
const server = await startRedisServer({ teardown: (fn) => cleanups.push(fn) })
try {
  const admin = new Redis(server.url)
  const rows: Array<Record<string, string | number>> = []
  for (const size of SIZES) {
    const env = `bench${randomUUID().slice(0, 8)}`
    const hot = new RedisHotState({ connection: server.url, env, dedupeWindowMs: WINDOW })
    const now = Date.now()
    for (let from = 0; from < size; from += BATCH) {
      const batch = batchOf(from, Math.min(BATCH, size - from), now)
      for (;;) {
        const outcome = await foldWithTerm(hot, 'AAPL', batch, { now })
        if (outcome.kind === 'applied') break
        await hot.seed(outcome.refs, [])
      }
    }
    const key = new RedisKeys(env).seenSlice('AAPL', dedupeSlices(now, WINDOW).current)
    const bytes = Number(await admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
    const entries = await admin.scard(key)
    // The same number of raw ids in one sorted set scored by expiry, for comparison.
    const raw = `${env}:raw-ids`
    for (let from = 0; from < size; from += BATCH) {
      const ids = batchOf(from, Math.min(BATCH, size - from), now).flatMap((item) => [String(now + WINDOW), item.id])
      await admin.zadd(raw, ...ids)
    }
    const rawBytes = Number(await admin.call('MEMORY', 'USAGE', raw, 'SAMPLES', '0'))
    await admin.del(raw)
    rows.push({
      items: size,
      fingerprints: entries,
      'slice bytes': bytes,
      'bytes/item': Number((bytes / entries).toFixed(1)),
      'raw ids in a sorted set, bytes/item': Number((rawBytes / size).toFixed(1))
    })
    await hot.close()
  }
  admin.disconnect()
  printTable('Redis dedupe memory per item (8-byte fingerprints in a slice set; ids ~60 characters)', rows)
} finally {
  for (const cleanup of cleanups) await cleanup()
}

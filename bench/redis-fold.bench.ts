/**
 * Items/s folded by one aggregator worker into Redis with 8-way fan-out: `foldBatch` with
 * RedisHotState (the fold script publishes every changed bucket) against a redis-server this
 * script starts on a free port. Run: `npx tsx bench/redis-fold.bench.ts`.
 */
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { MemoryArchive } from '../test/helpers/memory-archive.js'
import { RedisHotState } from '../shared/adapters/redis/redis-hot-state.js'
import { DEFAULT_TICKERS } from '../shared/config/config.js'
import { type ScoredItem, labelFor } from '../shared/timeseries/bucket.js'
import { foldBatch } from '../services/aggregator/fold-batch.js'
import { startRedisServer } from '../test/helpers/redis-server.js'

const BATCH_SIZES = [100, 500, 1000]
const CONCURRENCY = [1, 4]
const ITEMS_PER_RUN = 100_000
const SOURCES = ['tiingo', 'finnhub', 'benzinga', 'reuters']

let serial = 0

/** A live stream: items of the configured tickers from the last two minutes. */
function batchOf (size: number, now: number): ScoredItem[] {
  return Array.from({ length: size }, () => {
    const score = Math.round((Math.random() * 2 - 1) * 1e4) / 1e4
    return {
      id: `n${serial++}`,
      ticker: DEFAULT_TICKERS[Math.floor(Math.random() * DEFAULT_TICKERS.length)] as string,
      ts: now - Math.floor(Math.random() * 120_000),
      score,
      label: labelFor(score),
      source: SOURCES[Math.floor(Math.random() * SOURCES.length)] as string
    }
  })
}

/** Microseconds redis-server spent in scripts so far (INFO commandstats). */
async function scriptMicros (admin: Redis): Promise<number> {
  const stats = await admin.info('commandstats')
  let total = 0
  for (const match of stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=\d+,usec=(\d+)/gm)) total += Number(match[1])
  return total
}

interface Row {
  itemsPerSecond: number
  msPerJob: number
  /** Items/s if redis-server did nothing but run the fold script. */
  serverCeiling: number
}

async function run (url: string, batchSize: number, concurrency: number): Promise<Row> {
  const env = `bench${randomUUID().slice(0, 8)}`
  const hot = new RedisHotState({ connection: url, env, dedupeWindowMs: 86_400_000 })
  const deps = { hot, archive: new MemoryArchive(), now: Date.now }
  try {
    // Warm up: load every bucket the stream touches, as a running worker would have.
    await foldBatch(deps, { id: 'warm', acceptedAt: Date.now(), items: batchOf(5000, Date.now()) })
    const jobs = Math.ceil(ITEMS_PER_RUN / batchSize)
    const batches = Array.from({ length: jobs }, (_, i) => ({ id: `j${i}`, acceptedAt: Date.now(), items: batchOf(batchSize, Date.now()) }))
    let next = 0
    const admin = new Redis(url)
    const micros = await scriptMicros(admin)
    const started = process.hrtime.bigint()
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < batches.length) {
        const batch = batches[next++]
        if (batch !== undefined) await foldBatch(deps, batch)
      }
    }))
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    const serverSeconds = (await scriptMicros(admin) - micros) / 1e6
    admin.disconnect()
    const items = jobs * batchSize
    return { itemsPerSecond: items / seconds, msPerJob: (seconds * 1000 * concurrency) / jobs, serverCeiling: items / serverSeconds }
  } finally {
    await hot.close()
  }
}

const cleanups: Array<() => unknown> = []
const server = await startRedisServer({ teardown: (fn) => cleanups.push(fn) })
try {
  const rows: Array<Record<string, string | number>> = []
  for (const batchSize of BATCH_SIZES) {
    for (const concurrency of CONCURRENCY) {
      const { itemsPerSecond, msPerJob, serverCeiling } = await run(server.url, batchSize, concurrency)
      rows.push({
        'items/job': batchSize,
        concurrency,
        'items/s': Math.round(itemsPerSecond),
        'ms/job': Number(msPerJob.toFixed(2)),
        'script-bound items/s': Math.round(serverCeiling)
      })
    }
  }
  console.log(`Redis fold, ${DEFAULT_TICKERS.length} tickers, 8 resolutions, ${ITEMS_PER_RUN} items per row (target ≥ 50,000 items/s per worker)`)
  console.table(rows)
} finally {
  for (const cleanup of cleanups) await cleanup()
}

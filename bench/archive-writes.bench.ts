import { pathToFileURL } from 'node:url'
import { createDynamoClients } from '../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../shared/adapters/dynamo/dynamo-archive.js'
import { startDynalite } from '../shared/adapters/dynamo/embedded-dynamo.js'
import { ensureTable, tableName } from '../shared/adapters/dynamo/table.js'
import { MemoryHotState } from '../shared/adapters/memory/memory-hot-state.js'
import { DEFAULT_TICKERS } from '../shared/config/config.js'
import { type ScoredItem, labelFor } from '../shared/timeseries/bucket.js'
import { foldBatch } from '../services/aggregator/fold-batch.js'
import { WriteBehind } from '../services/aggregator/write-behind.js'

/** One measured configuration. */
export interface ArchiveWritesRow {
  tickers: number
  flushIntervalMs: number
  seconds: number
  items: number
  flushes: number
  /** Writes of the timed flushes, at each resolution's cadence. */
  steadyWrites: number
  /** With the final flush on stop, which writes everything still dirty. */
  writes: number
  steadyWritesPerItem: number
  writesPerItem: number
}

const RATE = 1000
const TICK_MS = 10
const SOURCES = ['tiingo', 'finnhub', 'benzinga', 'reuters']
const silent = { warn: () => {}, debug: () => {} }

/** `n` tickers: the default 13, or synthetic ones beyond. */
function tickerList (n: number): string[] {
  if (n <= DEFAULT_TICKERS.length) return DEFAULT_TICKERS.slice(0, n)
  return Array.from({ length: n }, (_, i) => `T${String(i).padStart(4, '0')}`)
}

async function measure (tickers: readonly string[], flushIntervalMs: number, seconds: number): Promise<ArchiveWritesRow> {
  const server = await startDynalite()
  const { client, doc } = createDynamoClients({ region: 'us-east-1', endpoint: server.endpoint })
  try {
    const name = tableName('bench')
    await ensureTable(client, name, { local: true })
    const archive = new DynamoArchive({ client: doc, tableName: name })
    const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000 })
    const deps = { hot, archive, now: Date.now }
    const writeBehind = new WriteBehind({ hot, archive, log: silent, flushIntervalMs })
    writeBehind.start()
    const began = Date.now()
    let sent = 0
    let score = 0
    while (sent < seconds * RATE) {
      // Catch up to the schedule, so a slow tick does not lower the rate.
      const due = Math.min(seconds * RATE, Math.floor((Date.now() - began) * RATE / 1000))
      const items: ScoredItem[] = []
      for (; sent < due; sent++) {
        score = Math.max(-1, Math.min(1, score + (Math.random() - 0.5) * 0.1))
        items.push({
          id: `bench-${sent}`,
          ticker: tickers[sent % tickers.length] as string,
          ts: Date.now() - Math.floor(Math.random() * 2000),
          score,
          label: labelFor(score),
          source: SOURCES[sent % SOURCES.length] as string
        })
      }
      // A fold that could not load from the archive is retried, as the ingest queue would.
      for (let attempt = 1; items.length > 0; attempt++) {
        try {
          await foldBatch(deps, { id: `b${sent}`, acceptedAt: Date.now(), items })
          break
        } catch (err) {
          if (attempt >= 5) throw err
        }
      }
      await new Promise((resolve) => setTimeout(resolve, TICK_MS))
    }
    const steadyWrites = archive.stats.writes
    await writeBehind.stop()
    const writes = archive.stats.writes
    return {
      tickers: tickers.length,
      flushIntervalMs,
      seconds,
      items: sent,
      flushes: writeBehind.stats.flushes,
      steadyWrites,
      writes,
      steadyWritesPerItem: steadyWrites / sent,
      writesPerItem: writes / sent
    }
  } finally {
    client.destroy()
    await server.close()
  }
}

/**
 * DynamoDB writes per item at a steady 1,000 items/s through the real fold and the real
 * write-behind (default cadences, 1 s flush interval), against dynalite, over 13 and over
 * 1,000 tickers. Target ≤ 0.01 over 13 tickers. A run should last longer than the longest
 * cadence (30 s) to show the steady state; the final flush on stop is shown apart.
 */
export async function main (seconds = Number(process.env.BENCH_SECONDS ?? 60)): Promise<ArchiveWritesRow[]> {
  const rows: ArchiveWritesRow[] = []
  for (const tickers of [13, 1000]) rows.push(await measure(tickerList(tickers), 1000, seconds))
  console.log(`archive writes per item at ${RATE} items/s, ${seconds} s each (target <= 0.01 over 13 tickers)`)
  console.table(rows.map((row) => ({
    tickers: row.tickers,
    'flush interval': `${row.flushIntervalMs / 1000} s`,
    items: row.items,
    flushes: row.flushes,
    'timed writes': row.steadyWrites,
    'writes/item': Number(row.steadyWritesPerItem.toFixed(4)),
    'with final flush': Number(row.writesPerItem.toFixed(4))
  })))
  return rows
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}

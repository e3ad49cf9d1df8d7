import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { startAggregator } from '../services/aggregator/aggregator.js'
import { createEmbeddedAdapters } from '../services/adapters.js'
import { loadConfig } from '../shared/config/config.js'
import { labelFor, type ScoredItem } from '../shared/timeseries/bucket.js'

/*
 * Journal bytes on disk in embedded mode under steady ingest: the real embedded adapters
 * (journal, memory hot state, dynalite in its thread) and the aggregator, items enqueued
 * straight into the journal at RATE items/s for SECONDS, then SETTLE seconds idle.
 * Prints the journal's segments and bytes every 10 s (and the dedupe slices' bytes where
 * they exist). `BENCH_SECONDS` (default 120), `BENCH_RATE` (default 200).
 */

const SECONDS = Number(process.env.BENCH_SECONDS ?? 120)
const RATE = Number(process.env.BENCH_RATE ?? 200)
const SETTLE = 30
const TICK_MS = 100

async function filesOf (dir: string): Promise<{ files: number, bytes: number }> {
  let files = 0
  let bytes = 0
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.journal') && !name.endsWith('.ndjson') && !name.endsWith('.seen')) continue
    files++
    bytes += (await stat(join(dir, name)).catch(() => ({ size: 0 }))).size
  }
  return { files, bytes }
}

async function main (): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'pulse-journal-bench-'))
  const config = loadConfig({ DATA_DIR: dataDir, DEMO_FEED: '0', INGEST_API_KEY: 'bench-ingest-key-0123456789', LOG_LEVEL: 'silent' })
  const log = pino({ level: 'silent' })
  const adapters = await createEmbeddedAdapters(config, log)
  const aggregator = await startAggregator(adapters, config, log)
  const tickers = config.tickers
  let n = 0
  const started = Date.now()
  const rows: string[] = []
  const sample = async (): Promise<void> => {
    const journal = await filesOf(join(dataDir, 'journal'))
    const dedupe = await filesOf(join(dataDir, 'dedupe'))
    const t = Math.round((Date.now() - started) / 1000)
    rows.push(`${String(t).padStart(5)} s  ${String(n).padStart(7)} items  journal ${String(journal.files).padStart(3)} segments ${(journal.bytes / 1e6).toFixed(3).padStart(8)} MB   dedupe ${dedupe.files} files ${(dedupe.bytes / 1e6).toFixed(3)} MB`)
    console.log(rows.at(-1))
  }
  const sampler = setInterval(() => { sample().catch(() => {}) }, 10_000)
  const perTick = RATE * TICK_MS / 1000
  const tick = setInterval(() => {
    const now = Date.now()
    const items: ScoredItem[] = []
    for (let i = 0; i < perTick; i++) {
      const score = Math.sin(n) * 0.9
      items.push({ id: `b${n}`, ticker: tickers[n % tickers.length] as string, ts: now, score, label: labelFor(score), source: 'tiingo' })
      n++
    }
    adapters.queue.enqueue(items, now).catch((err: unknown) => console.error(err))
  }, TICK_MS)
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000))
  clearInterval(tick)
  console.log(`-- ingest stopped after ${n} items; idle for ${SETTLE} s`)
  await new Promise((resolve) => setTimeout(resolve, SETTLE * 1000))
  clearInterval(sampler)
  await sample()
  await aggregator.stop()
  await adapters.close()
  await rm(dataDir, { recursive: true, force: true })
}

await main()

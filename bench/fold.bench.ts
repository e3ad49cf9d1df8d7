import { MemoryArchive } from '../test/helpers/memory-archive.js'
import { MemoryHotState } from '../shared/adapters/memory/memory-hot-state.js'
import { DEFAULT_TICKERS } from '../shared/config/config.js'
import { labelFor, type ScoredItem } from '../shared/timeseries/bucket.js'
import { foldBatch } from '../services/aggregator/fold-batch.js'
import { printTable } from './table.js'

function items (count: number, now: number, tickers: readonly string[], offset: number): ScoredItem[] {
  return Array.from({ length: count }, (_, i) => {
    const score = Math.sin(i + offset) * 0.9
    return { id: `b${offset + i}`, ticker: tickers[i % tickers.length] as string, ts: now - (i % 600) * 1000, score, label: labelFor(score), source: i % 3 === 0 ? 'tiingo' : 'finnhub' }
  })
}

/** Items/s through the embedded fold (dedupe + 8 resolutions + publish), by batch size. */
export async function main (): Promise<void> {
  const rows: Array<Record<string, string | number>> = []
  for (const batchSize of [1, 100, 1000]) {
    for (const tickers of [['AAPL'], DEFAULT_TICKERS]) {
      const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000 })
      const deps = { hot, archive: new MemoryArchive(), now: Date.now }
      const total = batchSize === 1 ? 50_000 : 300_000
      const now = Date.now()
      // Warm-up: loads every bucket once, as a running worker would have.
      await foldBatch(deps, { id: 'warm', acceptedAt: now, items: items(2000, now, tickers, -10_000) })
      const started = performance.now()
      for (let done = 0; done < total; done += batchSize) {
        await foldBatch(deps, { id: String(done), acceptedAt: now, items: items(batchSize, now, tickers, done) })
      }
      const seconds = (performance.now() - started) / 1000
      rows.push({ 'batch size': batchSize, tickers: tickers.length, items: total, 'items/s': Math.round(total / seconds), 'bucket updates/s': Math.round((total * 8) / seconds) })
    }
  }
  printTable('Embedded fold (MemoryHotState, 8 resolutions, dedupe, publish) — one core', rows)
}

if (import.meta.url === `file://${process.argv[1]}`) await main()

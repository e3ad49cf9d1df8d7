import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryBus } from '../shared/adapters/memory/memory-bus.js'
import { MemoryHotState } from '../shared/adapters/memory/memory-hot-state.js'
import { createDynamoClients } from '../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../shared/adapters/dynamo/dynamo-archive.js'
import { startDynalite } from '../shared/adapters/dynamo/embedded-dynamo.js'
import { ensureTable } from '../shared/adapters/dynamo/table.js'
import type { Bucket } from '../shared/timeseries/bucket.js'
import { bucketStart, DURATION_MS, type Resolution } from '../shared/timeseries/resolutions.js'
import { queryHistory } from '../services/gateway/history.js'
import { SeriesCache } from '../services/gateway/series-cache.js'
import { latencyHistogram, ms, printTable } from './table.js'

function series (ticker: string, resolution: Resolution, count: number, end: number): Bucket[] {
  const last = bucketStart(end, resolution)
  return Array.from({ length: count }, (_, i) => {
    const start = last - (count - 1 - i) * DURATION_MS[resolution]
    const v = Math.sin(i / 10) * 0.8
    return { ticker, resolution, start, open: v, high: v + 0.1, low: v - 0.1, close: v, count: 12, sum: v * 12, label_counts: { positive: 5, neutral: 4, negative: 3 }, sources: ['finnhub', 'tiingo'], first: { ts: start, id: 'a' }, last: { ts: start + 1, id: 'b' }, rev: 3, last_updated: start + 2 }
  })
}

/**
 * History query latency: served from the L1 series cache (the normal case) and from the
 * store (dynalite, a cold cache). The largest series retention allows is 360 buckets (1m
 * over 6 h); the store path is also measured for 1,440 buckets, as the seed's target.
 */
export async function main (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-bench-'))
  const dynalite = await startDynalite({ dir })
  const { client, doc } = createDynamoClients({ region: 'us-east-1', endpoint: dynalite.endpoint })
  await ensureTable(client, 'bench-sentiment-timeseries', { local: true })
  const archive = new DynamoArchive({ client: doc, tableName: 'bench-sentiment-timeseries' })
  const now = Date.now()
  const day = series('AAPL', '1m', 1440, now - 2 * 86_400_000)
  const retained = series('MSFT', '1m', 360, now)
  await archive.put([...day, ...retained])
  const rows: Array<Record<string, string | number>> = []

  const store = latencyHistogram()
  for (let i = 0; i < 200; i++) {
    const started = performance.now()
    const got = await archive.range('AAPL', '1m', (day[0] as Bucket).start, now, (day[0] as Bucket).start)
    store.recordValue(Math.round((performance.now() - started) * 1000))
    if (got.length !== 1440) throw new Error(`expected 1440 buckets, got ${got.length}`)
  }
  rows.push({ path: 'store (dynalite Query)', buckets: 1440, runs: 200, 'p50 ms': ms(store, 50), 'p99 ms': ms(store, 99) })

  const cold = latencyHistogram()
  for (let i = 0; i < 100; i++) {
    const cache = new SeriesCache({ hot: new MemoryHotState({ dedupeWindowMs: 86_400_000 }), archive, bus: new MemoryBus(), now: () => now })
    const started = performance.now()
    const response = await queryHistory(cache, { ticker: 'MSFT', resolution: '1m' }, () => now)
    cold.recordValue(Math.round((performance.now() - started) * 1000))
    if (response.cache_hit || response.buckets.length < 359) throw new Error('expected a cold read of the full series')
  }
  rows.push({ path: 'cold cache → store', buckets: 360, runs: 100, 'p50 ms': ms(cold, 50), 'p99 ms': ms(cold, 99) })

  const cache = new SeriesCache({ hot: new MemoryHotState({ dedupeWindowMs: 86_400_000 }), archive, bus: new MemoryBus(), now: () => now })
  await queryHistory(cache, { ticker: 'MSFT', resolution: '1m' }, () => now)
  const warm = latencyHistogram()
  const withJson = latencyHistogram()
  let json = 0
  for (let i = 0; i < 20_000; i++) {
    const started = performance.now()
    const response = await queryHistory(cache, { ticker: 'MSFT', resolution: '1m' }, () => now)
    const queried = performance.now()
    json = JSON.stringify(response).length
    warm.recordValue(Math.round((queried - started) * 1000))
    withJson.recordValue(Math.round((performance.now() - started) * 1000))
  }
  rows.push({ path: 'L1 cache hit', buckets: 360, runs: 20_000, 'p50 ms': ms(warm, 50), 'p99 ms': ms(warm, 99) })
  rows.push({ path: 'L1 cache hit + JSON', buckets: 360, runs: 20_000, 'p50 ms': ms(withJson, 50), 'p99 ms': ms(withJson, 99) })
  printTable(`History queries (response ${Math.round(json / 1024)} KiB for 360 buckets)`, rows)
  console.log(`cache hit rate over the warm run: ${((cache.hits / (cache.hits + cache.misses)) * 100).toFixed(3)} %`)

  await archive.close()
  client.destroy()
  await dynalite.close()
  await rm(dir, { recursive: true, force: true })
}

if (import.meta.url === `file://${process.argv[1]}`) await main()

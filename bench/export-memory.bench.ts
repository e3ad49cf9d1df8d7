/**
 * History export memory: a gateway (embedded mode, its archive a dynalite process of its
 * own) exports whole ranges of 100 tickers as CSV over HTTP, one ticker after another, and
 * this prints the gateway process's heap and RSS growth over the rest state against the
 * number of buckets written. Cases: a 6-hour 1m range (360 buckets a ticker), a 90-day 1h
 * range (2,160 a ticker) and one ticker's 30-day 1m range (43,200 buckets in one response).
 * The 1h and 1m retentions are lengthened in this process for the long cases (production
 * keeps 1h for 7 days and 1m for 6 hours). Run: `npx tsx bench/export-memory.bench.ts`
 * (`EXPORT_TICKERS` changes the 100).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb'
import pLimit from 'p-limit'
import pino from 'pino'
import { bucketToItem } from '../shared/adapters/dynamo/bucket-item.js'
import { createDynamoClients } from '../shared/adapters/dynamo/client.js'
import { tableName } from '../shared/adapters/dynamo/table.js'
import { loadConfig } from '../shared/config/config.js'
import { type Bucket, toWireBucket } from '../shared/timeseries/bucket.js'
import { bucketStart, DURATION_MS, type Resolution, RETENTION_MS } from '../shared/timeseries/resolutions.js'
import { startPulse } from '../services/runtime.js'
import { freePort } from '../test/helpers/free-port.js'
import { printTable } from './table.js'

// The archive client runs in this process: no warning about Node 20 in the output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const TICKER_COUNT = Number(process.env.EXPORT_TICKERS ?? 100)
const TICKERS = Array.from({ length: TICKER_COUNT }, (_, i) => `X${String(i).padStart(3, '0')}`)
const HOUR = 3_600_000
const DAY = 24 * HOUR
const MB = 1024 * 1024

interface Case {
  name: string
  resolution: Resolution
  spanMs: number
  tickers: string[]
}

/** `count` ended buckets of a series, the newest the one before the current bucket. */
function series (ticker: string, resolution: Resolution, count: number, now: number): Bucket[] {
  const last = bucketStart(now, resolution) - DURATION_MS[resolution]
  return Array.from({ length: count }, (_, i) => {
    const start = last - (count - 1 - i) * DURATION_MS[resolution]
    const v = Math.round(Math.sin(i / 10) * 800) / 1000
    return { ticker, resolution, start, open: v, high: v + 0.1, low: v - 0.1, close: v, count: 12, sum: v * 12, label_counts: { positive: 5, neutral: 4, negative: 3 }, sources: ['finnhub', 'tiingo'], first: { ts: start, id: 'a' }, last: { ts: start + 1, id: 'b' }, rev: 3, last_updated: start + 2 }
  })
}

/** A dynalite process of its own, so the archive's memory is not the gateway's. */
async function startDynaliteProcess (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'pulse-export-dynalite-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const child = spawn(process.execPath, ['scripts/dynalite.mjs', '--port', String(port), '--path', dir, '--createTableMs', '0'], { stdio: 'ignore' })
  t.teardown(() => child.kill())
  const endpoint = `http://127.0.0.1:${port}`
  for (let deadline = Date.now() + 30_000; ; await sleep(50)) {
    if (await fetch(endpoint, { method: 'POST' }).then(() => true, () => false)) return endpoint
    if (Date.now() > deadline) throw new Error('dynalite did not start')
  }
}

/** Heap and RSS now, after a full collection. */
function settled (): { heap: number, rss: number } {
  gc()
  gc()
  const { heapUsed, rss } = process.memoryUsage()
  return { heap: heapUsed, rss }
}

async function main (): Promise<void> {
  const teardowns: Array<() => unknown> = []
  const t = { teardown: (fn: () => unknown) => { teardowns.unshift(fn) } }
  try {
    const now = Date.now()
    const endpoint = await startDynaliteProcess(t)
    const dataDir = await mkdtemp(join(tmpdir(), 'pulse-export-bench-'))
    t.teardown(async () => await rm(dataDir, { recursive: true, force: true }))
    const env = `export${randomBytes(3).toString('hex')}`
    const pulse = await startPulse(loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      DYNAMODB_ENDPOINT: endpoint,
      PULSE_ENV: env,
      TICKERS: TICKERS.join(','),
      DEMO_FEED: '0',
      INGEST_API_KEY: 'bench-ingest-key-0123456789',
      RATE_LIMIT_READ: '0'
    }), { logger: pino({ level: 'silent' }), drainMs: 0 })
    t.teardown(async () => await pulse.close())
    // After start, which sets the table from the configuration.
    // A day more than the longest range, so no bucket of a range expires while the bench runs.
    Object.assign(RETENTION_MS, { '1h': 91 * DAY, '1m': 31 * DAY })
    // Seeded with unconditional batch writes, several times faster than the archive's conditional puts.
    const { client, doc } = createDynamoClients({ region: 'us-east-1', endpoint })
    t.teardown(() => client.destroy())
    const table = tableName(env)
    const writes = pLimit(8)
    const seed = async (buckets: Bucket[]): Promise<void> => {
      const batches: Bucket[][] = []
      for (let i = 0; i < buckets.length; i += 25) batches.push(buckets.slice(i, i + 25))
      await Promise.all(batches.map(async (batch) => await writes(async () => {
        let requests = batch.map((bucket) => ({ PutRequest: { Item: bucketToItem(bucket, now) as unknown as Record<string, unknown> } }))
        while (requests.length > 0) {
          const out = await doc.send(new BatchWriteCommand({ RequestItems: { [table]: requests } }))
          requests = (out.UnprocessedItems?.[table] ?? []) as typeof requests
        }
      })))
    }

    const cases: Case[] = [
      { name: '6 h of 1m', resolution: '1m', spanMs: 6 * HOUR, tickers: TICKERS },
      { name: '90 days of 1h', resolution: '1h', spanMs: 90 * DAY, tickers: TICKERS },
      { name: '30 days of 1m, one ticker', resolution: '1m', spanMs: 30 * DAY, tickers: [TICKERS[0] as string] }
    ]
    const seedStarted = performance.now()
    let seeded = 0
    const seededSeries = new Set<string>()
    for (const c of cases) {
      const count = c.spanMs / DURATION_MS[c.resolution]
      for (const ticker of c.tickers) {
        const key = `${ticker}#${c.resolution}`
        // The one-ticker 1m case's series also holds the 6-hour case's buckets: write the longer once.
        const buckets = series(ticker, c.resolution, c.resolution === '1m' && ticker === TICKERS[0] ? 30 * 24 * 60 : count, now)
        if (seededSeries.has(key)) continue
        seededSeries.add(key)
        await seed(buckets)
        seeded += buckets.length
      }
    }
    console.log(`seeded ${seeded.toLocaleString('en')} buckets into dynalite in ${((performance.now() - seedStarted) / 1000).toFixed(0)} s`)

    const url = pulse.url as string
    /** Exports every ticker of a case; `probe` runs after each chunk the client reads. */
    const exportCase = async (c: Case, probe: () => void): Promise<{ bytes: number, buckets: number, seconds: number }> => {
      const started = performance.now()
      let bytes = 0
      let lines = 0
      for (const ticker of c.tickers) {
        const end = new Date(bucketStart(now, c.resolution)).toISOString()
        const start = new Date(bucketStart(now, c.resolution) - c.spanMs).toISOString()
        const res = await fetch(`${url}/api/v2/timeseries/${ticker}/export?resolution=${c.resolution}&start=${start}&end=${end}&format=csv`)
        if (res.status !== 200 || res.body === null) throw new Error(`export of ${ticker} answered ${res.status}`)
        for await (const chunk of res.body) {
          bytes += chunk.byteLength
          for (const byte of chunk) if (byte === 10) lines++
          probe()
        }
      }
      const buckets = lines - c.tickers.length
      const expected = c.tickers.length * (c.spanMs / DURATION_MS[c.resolution])
      if (buckets !== expected) throw new Error(`${c.name}: exported ${buckets} buckets, expected ${expected}`)
      return { bytes, buckets, seconds: (performance.now() - started) / 1000 }
    }

    const rows: Array<Record<string, string | number>> = []
    for (const c of cases) {
      // Pass 1, as it runs: throughput, and the peaks of heap (garbage included) and RSS.
      const rest = settled()
      let peakHeap = rest.heap
      let peakRss = rest.rss
      const sample = (): void => {
        const { heapUsed, rss } = process.memoryUsage()
        if (heapUsed > peakHeap) peakHeap = heapUsed
        if (rss > peakRss) peakRss = rss
      }
      const sampler = setInterval(sample, 5)
      const run = await exportCase(c, sample)
      clearInterval(sampler)
      // Pass 2: what the export keeps alive, a full GC every 250 ms of it.
      const liveRest = settled().heap
      let peakLive = liveRest
      let lastGc = performance.now()
      await exportCase(c, () => {
        if (performance.now() - lastGc < 250) return
        lastGc = performance.now()
        gc()
        peakLive = Math.max(peakLive, process.memoryUsage().heapUsed)
      })
      rows.push({
        case: c.name,
        tickers: c.tickers.length,
        buckets: run.buckets.toLocaleString('en'),
        'MB written': (run.bytes / MB).toFixed(1),
        seconds: run.seconds.toFixed(1),
        'buckets/s': Math.round(run.buckets / run.seconds).toLocaleString('en'),
        'peak heap growth MB': ((peakHeap - rest.heap) / MB).toFixed(1),
        'peak live heap growth MB': ((peakLive - liveRest) / MB).toFixed(1),
        'peak RSS growth MB': ((peakRss - rest.rss) / MB).toFixed(1)
      })
    }
    // For scale: the largest case's buckets held at once, as a response built whole would hold them.
    const before = settled().heap
    const held = series(TICKERS[0] as string, '1m', 30 * 24 * 60, now).map((bucket) => toWireBucket(bucket, now))
    const heldMb = (settled().heap - before) / MB
    console.log(`(${held.length.toLocaleString('en')} wire buckets held in memory at once: ${heldMb.toFixed(1)} MB of heap)`)
    printTable('History export, CSV over HTTP, one ticker after another (client and gateway in this process)', rows)
    console.log('Growth is over the heap and RSS after a full GC before each pass. Peak heap counts garbage not yet collected; peak live heap')
    console.log('samples the heap right after a full GC every 250 ms of the export. The client (a fetch reading the body) runs in the same process.')
  } finally {
    for (const teardown of teardowns) await teardown()
  }
}

await main()

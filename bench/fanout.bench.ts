/**
 * Fan-out benchmark: one embedded gateway (a child process, so its RSS is its own) and
 * 100, 1,000 and 10,000 real WebSocket clients (in client processes) watching the same
 * series while items are ingested at a steady rate. Reports the latency from ingest
 * accepted (`accepted_at`) to client receipt, delivered events per second and the
 * gateway's RSS per connection, for each gateway engine (`GATEWAY_ENGINE`): both engines
 * run back to back at each client count, so their ratio is fair on a shared machine.
 * Run: `npx tsx bench/fanout.bench.ts [counts…]`; `BENCH_ENGINES=uws` picks engines.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import hdr from 'hdr-histogram-js'

const KEY = 'bench-ingest-key-0123456789'
const LOAD_SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const BATCHES_PER_SECOND = 20
const ITEMS_PER_BATCH = 5
const CLIENTS_PER_PROCESS = 2500
const PHASE_TIMEOUT_MS = 180_000
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url))

type Engine = 'fastify' | 'uws'
const ENGINES: Engine[] = (process.env.BENCH_ENGINES ?? 'fastify,uws').split(',').map((e) => e.trim() as Engine)

interface Row {
  engine: Engine
  clients: number
  p50: number
  p99: number
  max: number
  eventsPerSecond: number
  rssPerConnKb: number
  rssMb: number
}

/** The gateway's RSS after a full collection. */
async function rssKb (gateway: ChildProcess): Promise<number> {
  gateway.send({ op: 'gc' })
  await next(gateway, 'gc')
  const status = await readFile(`/proc/${gateway.pid as number}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
}

async function next<T> (child: ChildProcess, op: string): Promise<T> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${op} within ${PHASE_TIMEOUT_MS} ms`)), PHASE_TIMEOUT_MS)
    const onMessage = (message: { op?: string, error?: string }): void => {
      if (message.op === 'failed') reject(new Error(message.error))
      if (message.op !== op && !(op === 'url' && message.op === undefined)) return
      clearTimeout(timer)
      child.off('message', onMessage)
      resolve(message as T)
    }
    child.on('message', onMessage)
  })
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function phase (engine: Engine, clients: number): Promise<Row> {
  const dataDir = await mkdtemp(join(tmpdir(), 'pulse-bench-'))
  const gateway = fork(here('./fanout-gateway.ts'), {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      DEMO_FEED: '0',
      LOG_LEVEL: 'silent',
      GATEWAY_ENGINE: engine,
      INGEST_API_KEY: KEY,
      MAX_CONNECTIONS: String(clients + 100),
      RATE_LIMIT_INGEST: '0',
      RATE_LIMIT_READ: '0'
    }
  })
  const workers: ChildProcess[] = []
  try {
    const { url } = await next<{ url: string }>(gateway, 'url')
    await sleep(500)
    const baseline = await rssKb(gateway)
    for (let left = clients; left > 0; left -= CLIENTS_PER_PROCESS) {
      const worker = fork(here('./fanout-clients.ts'), { execArgv: ['--import', 'tsx'] })
      worker.send({ op: 'start', url, count: Math.min(left, CLIENTS_PER_PROCESS), query: '?tickers=AAPL&resolutions=1m' })
      workers.push(worker)
    }
    await Promise.all(workers.map(async (worker) => await next(worker, 'ready')))
    await sleep(1000)
    const connected = await rssKb(gateway)
    for (const worker of workers) worker.send({ op: 'record' })

    const began = Date.now()
    let n = 0
    for (let tick = 0; tick < LOAD_SECONDS * BATCHES_PER_SECOND; tick++) {
      const items = Array.from({ length: ITEMS_PER_BATCH }, () => ({ id: `b${clients}-${n++}`, ticker: 'AAPL', timestamp: new Date().toISOString(), score: ((n % 21) - 10) / 10, source: 'bench' }))
      const res = await fetch(`${url}/api/v2/items`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify(items) })
      if (res.status !== 202) throw new Error(`ingest answered ${res.status}`)
      await sleep(Math.max(0, began + ((tick + 1) * 1000) / BATCHES_PER_SECOND - Date.now()))
    }
    await sleep(1000)
    const seconds = (Date.now() - began) / 1000
    const peak = await rssKb(gateway)

    const merged = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000, numberOfSignificantValueDigits: 3 })
    let events = 0
    const results = await Promise.all(workers.map(async (worker) => {
      const result = next<{ events: number, histogram: string }>(worker, 'result')
      worker.send({ op: 'stop' })
      return await result
    }))
    for (const result of results) {
      events += result.events
      merged.add(hdr.decodeFromCompressedBase64(result.histogram))
    }
    return {
      engine,
      clients,
      p50: merged.getValueAtPercentile(50),
      p99: merged.getValueAtPercentile(99),
      max: merged.maxValue,
      eventsPerSecond: Math.round(events / seconds),
      rssPerConnKb: Math.round(((connected - baseline) / clients) * 10) / 10,
      rssMb: Math.round(peak / 1024)
    }
  } finally {
    for (const worker of workers) worker.kill('SIGKILL')
    gateway.kill('SIGTERM')
    await sleep(500)
    gateway.kill('SIGKILL')
    await rm(dataDir, { recursive: true, force: true })
  }
}

const counts = process.argv.slice(2).map(Number).filter((c) => c > 0)
const rows: Row[] = []
for (const clients of counts.length > 0 ? counts : [100, 1000, 10_000]) {
  for (const engine of ENGINES) {
    process.stderr.write(`fan-out to ${clients} clients, ${engine} engine…\n`)
    rows.push(await phase(engine, clients))
  }
}
console.log(`\nFan-out, one series (AAPL#1m), ${BATCHES_PER_SECOND} batches/s for ${LOAD_SECONDS} s, DEBOUNCE_MS 100; engine fastify = Fastify + ws, uws = uWebSockets.js\n`)
console.log('| clients | engine | latency p50 (ms) | latency p99 (ms) | max (ms) | delivered events/s | gateway RSS/conn (KB) | gateway RSS (MB) |')
console.log('|---:|---|---:|---:|---:|---:|---:|---:|')
for (const r of rows) console.log(`| ${r.clients} | ${r.engine} | ${r.p50} | ${r.p99} | ${r.max} | ${r.eventsPerSecond} | ${r.rssPerConnKb} | ${r.rssMb} |`)
const ratio = (a: number, b: number): string => b === 0 ? '-' : `${(a / b).toFixed(2)}×`
for (const clients of new Set(rows.map((r) => r.clients))) {
  const fastify = rows.find((r) => r.clients === clients && r.engine === 'fastify')
  const uws = rows.find((r) => r.clients === clients && r.engine === 'uws')
  if (fastify === undefined || uws === undefined) continue
  console.log(`${clients} clients, uws / fastify: p50 ${ratio(uws.p50, fastify.p50)}, p99 ${ratio(uws.p99, fastify.p99)}, events/s ${ratio(uws.eventsPerSecond, fastify.eventsPerSecond)}, RSS/conn ${ratio(uws.rssPerConnKb, fastify.rssPerConnKb)}`)
}

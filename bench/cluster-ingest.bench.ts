/**
 * Ingest throughput on a Redis Cluster: items/s folded by 1, 2 and 4 real worker processes
 * (`ROLE=worker`, `REDIS_CLUSTER=1`, `INGEST_SHARDS=4`) on a local three-master cluster
 * this script starts, with dynalite as the archive. Each row starts fresh workers, warms
 * every bucket up (loads from the archive), then queues ITEMS items in 1,000-item batches
 * split over the four shards and times until every shard's queue is empty.
 * Run: `npx tsx bench/cluster-ingest.bench.ts`.
 */
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { availableParallelism, loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { BullmqIngestQueue } from '../shared/adapters/redis/bullmq-queue.js'
import { type ScoredItem, labelFor } from '../shared/timeseries/bucket.js'
import { type ManagedProcess, startDynaliteProcess, startPulseProcess } from '../test/helpers/processes.js'
import { startRedisCluster } from '../test/helpers/redis-cluster.js'
import { printTable } from './table.js'

const WORKERS = [1, 2, 4]
const SHARDS = 4
const ITEMS = Number(process.env.BENCH_ITEMS ?? 40_000)
const BATCH = 1000
const TICKERS = Array.from({ length: 64 }, (_, i) => `B${String(i).padStart(2, '0')}`)
const SOURCES = ['tiingo', 'finnhub', 'benzinga', 'reuters']

let serial = 0

/** A live stream: items of the bench tickers from the last two minutes. */
function batchOf (size: number, now: number): ScoredItem[] {
  return Array.from({ length: size }, () => {
    const score = Math.round((Math.random() * 2 - 1) * 1e4) / 1e4
    return {
      id: `n${serial++}`,
      ticker: TICKERS[Math.floor(Math.random() * TICKERS.length)] as string,
      ts: now - Math.floor(Math.random() * 120_000),
      score,
      label: labelFor(score),
      source: SOURCES[Math.floor(Math.random() * SOURCES.length)] as string
    }
  })
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux; 0 elsewhere). */
async function cpuSeconds (pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100
}

async function cpuOf (pids: ReadonlyArray<number | undefined>): Promise<number> {
  return (await Promise.all(pids.map(cpuSeconds))).reduce((a, b) => a + b, 0)
}

async function drained (queue: BullmqIngestQueue): Promise<void> {
  for (;;) {
    const counts = await queue.counts()
    if (counts.failed > 0) throw new Error(`${counts.failed} batches failed`)
    if (counts.waiting === 0 && counts.active === 0) return
    await sleep(20)
  }
}

const cleanups: Array<() => unknown> = []
const owner = { teardown: (fn: () => unknown) => { cleanups.push(fn) } }
try {
  const cluster = await startRedisCluster(owner)
  const dynalite = await startDynaliteProcess(owner)
  const rows: Array<Record<string, string | number>> = []
  let baseline = 0
  for (const count of WORKERS) {
    const env = {
      REDIS_URL: cluster.url,
      REDIS_CLUSTER: '1',
      INGEST_SHARDS: String(SHARDS),
      DYNAMODB_ENDPOINT: dynalite.endpoint,
      PULSE_ENV: `bench${randomUUID().slice(0, 8)}`,
      TICKERS: TICKERS.join(','),
      LOG_LEVEL: 'warn'
    }
    const queue = new BullmqIngestQueue({ url: cluster.url, cluster: {}, env: env.PULSE_ENV, shards: SHARDS })
    const workers: ManagedProcess[] = []
    try {
      for (let i = 0; i < count; i++) workers.push(await startPulseProcess(owner, { role: 'worker', env: { ...env, LOG_LEVEL: 'info' } }))
      // Warm up: every bucket the stream touches is loaded once, as on a running worker.
      for (let i = 0; i < 5; i++) await queue.enqueue(batchOf(BATCH, Date.now()), Date.now())
      await drained(queue)
      const batches = Array.from({ length: Math.ceil(ITEMS / BATCH) }, () => batchOf(BATCH, Date.now()))
      const groups = { workers: workers.map((w) => w.pid()), redis: cluster.pids(), dynalite: [dynalite.pid()] }
      const cpuBefore = await Promise.all(Object.values(groups).map(cpuOf))
      const started = process.hrtime.bigint()
      await Promise.all(batches.map(async (items) => await queue.enqueue(items, Date.now())))
      await drained(queue)
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      const cpu = (await Promise.all(Object.values(groups).map(cpuOf))).map((after, i) => (after - (cpuBefore[i] ?? 0)) / seconds)
      const itemsPerSecond = (batches.length * BATCH) / seconds
      if (count === 1) baseline = itemsPerSecond
      rows.push({
        workers: count,
        items: batches.length * BATCH,
        seconds: Number(seconds.toFixed(2)),
        'items/s': Math.round(itemsPerSecond),
        'vs 1 worker': `${(itemsPerSecond / baseline).toFixed(2)}×`,
        // Cores each group kept busy on average: how the two cores were shared.
        'cores: workers': Number((cpu[0] ?? 0).toFixed(2)),
        'redis-servers': Number((cpu[1] ?? 0).toFixed(2)),
        dynalite: Number((cpu[2] ?? 0).toFixed(2)),
        // Independent of how much of the machine the run got: the cost of an item.
        'items per core-second': Math.round(itemsPerSecond / cpu.reduce((a, b) => a + b, 0))
      })
    } finally {
      await Promise.all(workers.map(async (w) => await w.stop()))
      await queue.close()
    }
  }
  printTable(`Ingest on a local 3-master Redis Cluster, ${SHARDS} ingest shards, ${TICKERS.length} tickers, ${BATCH} items/batch, 8 resolutions`, rows)
  console.log(`Workers, redis-servers, dynalite and this script share ${availableParallelism()} CPU cores (load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`)
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup()
}

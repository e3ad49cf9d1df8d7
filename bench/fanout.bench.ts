/**
 * Fan-out benchmark: Pulse next to its peers, in the same run, with the same load client,
 * on the same Redis. Each system runs two gateway processes (clients spread over both);
 * a publisher sends ~300-byte bucket updates on one channel at a fixed rate: 32 past 1m
 * buckets in turn, each message one more item folded into one of them (so a bucket changes
 * every 1.6 s at 20 updates/s, every 160 ms at 200/s: never inside Pulse's 100 ms debounce,
 * and always one field set away from its last state, as a live bucket is). Systems:
 *  - `ws`: a bare `ws` server subscribed to one Redis channel, sending each message to every client;
 *  - `socketio`: Socket.IO 4 with `@socket.io/redis-adapter`, clients in one room;
 *  - `pulse-fastify`, `pulse-uws`: Pulse gateways (`ROLE=gateway`, cluster mode) on each
 *    engine, fed through Pulse's own Redis bus, clients on full states (`?encoding=full`);
 *  - `pulse-fastify-delta`, `pulse-uws-delta`: the same with the SDK's encoding
 *    (`?encoding=delta`): a client gets a bucket's first state whole, then `bucket_delta`s.
 * For each it prints the publish → client receipt latency (p50/p99/max; a delta carries no
 * `accepted_at`, so on delta rows only the whole states are timed), delivered/expected
 * events, bytes and gateway CPU per delivered update, gateway RSS per connection (idle,
 * after a full GC) and gateway CPU, then the Pulse/peer ratios and delta/full; and a last
 * row with 10,000 clients on one Pulse gateway.
 *
 * Run: `npx tsx bench/fanout.bench.ts`. Settings (environment):
 *   BENCH_ROWS     clients×updates/s rows, default `100x20,1000x20,5000x20,1000x200`
 *   BENCH_SYSTEMS  default `ws,socketio,pulse-fastify,pulse-uws`
 *   BENCH_SINGLE   rows with one Pulse gateway (fastify engine) after the others, clients×updates/s,
 *                  default `10000x20`; 0 skips them
 *   BENCH_SINGLE_SYSTEMS  systems of those rows, default `ws,pulse-fastify`
 *   BENCH_SECONDS  load time per phase, default 10
 *   BENCH_ROUNDS   rounds per row, default 3: the systems of a row take turns, in a rotating
 *                  order, round after round, and each is reported by its median-p99 round,
 *                  so a burst of load from elsewhere on the machine does not decide a ratio
 *   BENCH_CPU_PROF a directory: gateways run with `--cpu-prof` and write their profiles there
 * A quick run: `BENCH_ROWS=100x20 BENCH_SINGLE=0 BENCH_SECONDS=3 BENCH_ROUNDS=1 npx tsx bench/fanout.bench.ts`.
 * Delta against full: `BENCH_ROWS=1000x20,1000x200 BENCH_SYSTEMS=pulse-fastify,pulse-fastify-delta,pulse-uws,pulse-uws-delta BENCH_SINGLE=0 npx tsx bench/fanout.bench.ts`.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { createAdapter } from '@socket.io/redis-adapter'
import hdr from 'hdr-histogram-js'
import { Redis } from 'ioredis'
import { Server as SocketIoServer } from 'socket.io'
import { RedisBus } from '../shared/adapters/redis/redis-bus.js'
import type { Bucket } from '../shared/timeseries/bucket.js'
import { toWireBucket } from '../shared/timeseries/bucket.js'
import { startDynaliteProcess } from '../test/helpers/processes.js'
import { startRedisServer } from '../test/helpers/redis-server.js'

const KEY = 'bench-ingest-key-0123456789'
const PULSE_ENV = 'bench'
const PEER_CHANNEL = 'bench:AAPL#1m'
const PEER_EVENT = 'update'
const LOAD_SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const CLIENTS_PER_PROCESS = 2500
const PHASE_TIMEOUT_MS = 240_000
/**
 * Past 1m buckets the publisher cycles through: enough that a bucket is never sent twice in
 * one debounce window (up to 320 updates/s), few enough that every channel and connection
 * remembers each one's last state (a channel keeps 64 delta bases).
 */
const BUCKET_CYCLE = 32
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url))

type System = 'ws' | 'socketio' | 'pulse-fastify' | 'pulse-uws' | 'pulse-fastify-delta' | 'pulse-uws-delta'
const SYSTEMS = (process.env.BENCH_SYSTEMS ?? 'ws,socketio,pulse-fastify,pulse-uws').split(',').map((s) => s.trim() as System)
/** `clients×rate` rows, e.g. `100x20,1000x20`; a row without a rate runs at 20 updates/s. */
function rows (text: string): Array<{ clients: number, rate: number }> {
  return text.split(',').map((row) => {
    const [clients, rate] = row.trim().split('x').map(Number)
    return { clients: clients ?? 0, rate: rate ?? 20 }
  }).filter((row) => row.clients > 0 && row.rate > 0)
}
const ROWS = rows(process.env.BENCH_ROWS ?? '100x20,1000x20,5000x20,1000x200')
const SINGLE_ROWS = rows(process.env.BENCH_SINGLE ?? '10000x20')
/** Systems of the one-gateway rows: Pulse, and bare ws to show what one process and this load client can carry. */
const SINGLE_SYSTEMS = (process.env.BENCH_SINGLE_SYSTEMS ?? 'ws,pulse-fastify').split(',').map((s) => s.trim() as System)
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3))
const CPU_PROF = process.env.BENCH_CPU_PROF

interface Result {
  system: System
  gateways: number
  clients: number
  rate: number
  /** Latency of the updates that carry `accepted_at`, ms; NaN when none did (deltas only). */
  p50: number
  p99: number
  max: number
  delivered: number
  expected: number
  /** WebSocket payload bytes a client received per delivered update. */
  bytesPerUpdate: number
  /** Gateway CPU per delivered update, µs, all gateways together. */
  cpuPerUpdateUs: number
  rssPerConnKb: number
  /** Gateway CPU over the load window, % of one core, all gateways together. */
  cpuPct: number
  /**
   * Load-client CPU over the same window, all client processes together: near the cores
   * the gateways leave free, the client, not the gateway, sets the latency.
   */
  clientCpuPct: number
  /** p99 of every round of this row and system, in the order they ran. */
  roundsP99: number[]
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

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
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before ${op}`)))
  })
}

/** RSS of the gateways after a full collection, KB. */
async function rssKb (gateways: ChildProcess[]): Promise<number> {
  let total = 0
  for (const gateway of gateways) {
    gateway.send({ op: 'gc' })
    await next(gateway, 'gc')
    const status = await readFile(`/proc/${gateway.pid as number}/status`, 'utf8')
    total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  }
  return total
}

/** User + system CPU time of the processes, clock ticks (1/100 s). */
async function cpuTicks (processes: ChildProcess[]): Promise<number> {
  let total = 0
  for (const child of processes) {
    const stat = await readFile(`/proc/${child.pid as number}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    total += Number(fields[11]) + Number(fields[12])
  }
  return total
}

// ---- Shared services and publishers

const teardowns: Array<() => unknown> = []
const harness = { teardown: (fn: () => unknown) => { teardowns.push(fn) } }
const redis = await startRedisServer(harness)
const dynalite = await startDynaliteProcess(harness)
const bus = new RedisBus({ url: redis.url, env: PULSE_ENV })
const peerPublisher = new Redis(redis.url)
const socketIoPublisher = new SocketIoServer()
const socketIoRedis = [new Redis(redis.url), new Redis(redis.url)]
socketIoPublisher.adapter(createAdapter(socketIoRedis[0], socketIoRedis[1]))

let published = 0
/** Each bucket of the cycle as its updates left it, by start. */
const held = new Map<number, Bucket>()

/** The n-th update: one more item folded into the (n mod BUCKET_CYCLE)-th past 1m bucket of AAPL. */
function update (n: number, now: number): { bucket: Bucket, text: string } {
  const start = (Math.floor(now / 60_000) - 1 - (n % BUCKET_CYCLE)) * 60_000
  const score = ((n % 21) - 10) / 10
  const key = { ts: start + (n % 60_000), id: `b${n}` }
  const before = held.get(start)
  const label = score > 0.2 ? 'positive' : score < -0.2 ? 'negative' : 'neutral'
  const bucket: Bucket = before === undefined
    ? {
        ticker: 'AAPL',
        resolution: '1m',
        start,
        open: score,
        high: score,
        low: score,
        close: score,
        count: 1,
        sum: score,
        label_counts: { positive: 0, neutral: 0, negative: 0, [label]: 1 },
        sources: ['finnhub', 'tiingo'],
        first: key,
        last: key,
        rev: n + 1,
        last_updated: now
      }
    : {
        ...before,
        high: Math.max(before.high, score),
        low: Math.min(before.low, score),
        close: score,
        count: before.count + 1,
        sum: before.sum + score,
        label_counts: { ...before.label_counts, [label]: before.label_counts[label] + 1 },
        last: key,
        rev: n + 1,
        last_updated: now
      }
  held.set(start, bucket)
  if (held.size > 2 * BUCKET_CYCLE) held.delete(held.keys().next().value as number)
  // The peers send what Pulse sends for the same change: same size, same client parsing.
  const text = JSON.stringify({ type: 'bucket_update', id: String(now), ticker: 'AAPL', resolution: '1m', bucket: toWireBucket(bucket, now), accepted_at: now })
  return { bucket, text }
}

async function publish (system: System): Promise<void> {
  const now = Date.now()
  const { bucket, text } = update(published++, now)
  if (system === 'ws') await peerPublisher.publish(PEER_CHANNEL, text)
  else if (system === 'socketio') socketIoPublisher.to(PEER_CHANNEL).emit(PEER_EVENT, text)
  else await bus.publish([{ kind: 'change', bucket, acceptedAt: now }])
}

// ---- Gateways

async function startGateway (system: System, clients: number): Promise<{ child: ChildProcess, url: string }> {
  const pulse = system.startsWith('pulse-')
  const child = fork(here(pulse ? './fanout-gateway.ts' : './fanout-peers.ts'), {
    execArgv: ['--import', 'tsx', '--expose-gc', ...(CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`])],
    env: {
      ...process.env,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...(pulse
        ? {
            PORT: '0',
            HOST: '127.0.0.1',
            ROLE: 'gateway',
            REDIS_URL: redis.url,
            DYNAMODB_ENDPOINT: dynalite.endpoint,
            PULSE_ENV,
            DEMO_FEED: '0',
            LOG_LEVEL: 'silent',
            GATEWAY_ENGINE: system.startsWith('pulse-uws') ? 'uws' : 'fastify',
            INGEST_API_KEY: KEY,
            MAX_CONNECTIONS: String(clients + 100),
            RATE_LIMIT_INGEST: '0',
            RATE_LIMIT_READ: '0',
            // No load balancer to drain from: stop at once.
            DRAIN_MS: '0'
          }
        : { PEER: system, REDIS_URL: redis.url, PEER_CHANNEL })
    }
  })
  const { url } = await next<{ url: string }>(child, 'url')
  return { child, url }
}

async function phase (system: System, clients: number, rate: number, gatewayCount: number): Promise<Result> {
  const gateways: Array<{ child: ChildProcess, url: string }> = []
  const workers: ChildProcess[] = []
  try {
    for (let i = 0; i < gatewayCount; i++) gateways.push(await startGateway(system, clients))
    const children = gateways.map((g) => g.child)
    // Two collections a moment apart, so start-up garbage does not pass for connection memory.
    await rssKb(children)
    await sleep(500)
    const baseline = await rssKb(children)
    const urls = gateways.map(({ url }) => {
      if (system === 'socketio') return url
      if (system === 'ws') return url.replace(/^http/, 'ws')
      return `${url.replace(/^http/, 'ws')}/api/v2/ws?tickers=AAPL&resolutions=1m&encoding=${system.endsWith('-delta') ? 'delta' : 'full'}`
    })
    for (let left = clients; left > 0; left -= CLIENTS_PER_PROCESS) {
      const worker = fork(here('./fanout-clients.ts'), { execArgv: ['--import', 'tsx'] })
      worker.send({ op: 'start', urls, count: Math.min(left, CLIENTS_PER_PROCESS), protocol: system === 'socketio' ? 'socketio' : 'ws', event: PEER_EVENT })
      workers.push(worker)
    }
    await Promise.all(workers.map(async (worker) => await next(worker, 'ready')))
    // Every bucket of the cycle once before the timed window, as on a stream watched for a
    // while: a delta client then holds the base of each bucket it is sent.
    for (let i = 0; i < BUCKET_CYCLE; i++) {
      await publish(system)
      await sleep(5)
    }
    await sleep(1500)
    const connected = await rssKb(children)
    for (const worker of workers) worker.send({ op: 'record' })

    const cpuBefore = await cpuTicks(children)
    const clientCpuBefore = await cpuTicks(workers)
    const began = Date.now()
    const messages = LOAD_SECONDS * rate
    for (let i = 0; i < messages; i++) {
      await publish(system)
      await sleep(Math.max(0, began + ((i + 1) * 1000) / rate - Date.now()))
    }
    await sleep(1500)
    const cpu = await cpuTicks(children) - cpuBefore
    const clientCpu = await cpuTicks(workers) - clientCpuBefore
    const seconds = (Date.now() - began) / 1000

    const merged = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000, numberOfSignificantValueDigits: 3 })
    let delivered = 0
    let bytes = 0
    const results = await Promise.all(workers.map(async (worker) => {
      const result = next<{ events: number, bytes: number, histogram: string }>(worker, 'result')
      worker.send({ op: 'stop' })
      return await result
    }))
    for (const result of results) {
      delivered += result.events
      bytes += result.bytes
      merged.add(hdr.decodeFromCompressedBase64(result.histogram))
    }
    return {
      system,
      gateways: gatewayCount,
      clients,
      rate,
      p50: merged.totalCount === 0 ? NaN : merged.getValueAtPercentile(50),
      p99: merged.totalCount === 0 ? NaN : merged.getValueAtPercentile(99),
      max: merged.totalCount === 0 ? NaN : merged.maxValue,
      delivered,
      expected: messages * clients,
      bytesPerUpdate: delivered === 0 ? 0 : Math.round(bytes / delivered),
      // Clock ticks are 10 ms.
      cpuPerUpdateUs: delivered === 0 ? 0 : Math.round((cpu * 10_000 / delivered) * 10) / 10,
      rssPerConnKb: Math.round(((connected - baseline) / clients) * 10) / 10,
      cpuPct: Math.round(cpu / seconds),
      clientCpuPct: Math.round(clientCpu / seconds),
      roundsP99: []
    }
  } finally {
    for (const worker of workers) worker.kill('SIGKILL')
    for (const { child } of gateways) child.kill('SIGTERM')
    // A profiled gateway writes its profile as it exits.
    await sleep(CPU_PROF === undefined ? 500 : 5000)
    for (const { child } of gateways) child.kill('SIGKILL')
  }
}

// ---- Run and report

const results: Result[] = []
/** Rows are printed as they finish, so a long run shows its figures early. */
function report (r: Result): void {
  results.push(r)
  const ms = (v: number): string => Number.isNaN(v) ? '–' : String(v)
  const rounds = r.roundsP99.length > 1 && !r.roundsP99.every(Number.isNaN) ? ` (${r.roundsP99.join(', ')})` : ''
  console.log(`| ${r.clients} × ${r.rate} | ${r.gateways} | ${r.system} | ${ms(r.p50)} | ${ms(r.p99)}${rounds} | ${ms(r.max)} | ${r.delivered} / ${r.expected} (${((100 * r.delivered) / r.expected).toFixed(1)} %) | ${r.bytesPerUpdate} | ${r.cpuPerUpdateUs} | ${r.rssPerConnKb} | ${r.cpuPct} | ${r.clientCpuPct} |`)
}

/** The round with the median p99 (the lower middle one of an even count), with every round's p99. */
function median (runs: Result[]): Result {
  // Delta rows time no update (a delta has no accepted_at): their median round is by CPU.
  const key = (r: Result): number => Number.isNaN(r.p99) ? r.cpuPerUpdateUs : r.p99
  const sorted = [...runs].sort((a, b) => key(a) - key(b))
  return { ...(sorted[Math.floor((sorted.length - 1) / 2)] as Result), roundsP99: runs.map((r) => r.p99) }
}

/** Every system of a row, `ROUNDS` times, each round starting with the next system. */
async function row (clients: number, rate: number, systems: System[], gateways: number): Promise<void> {
  const runs = new Map<System, Result[]>(systems.map((system) => [system, []]))
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < systems.length; i++) {
      const system = systems[(round + i) % systems.length] as System
      process.stderr.write(`${clients} clients × ${rate} updates/s, ${system}, round ${round + 1}/${ROUNDS}…\n`)
      runs.get(system)?.push(await phase(system, clients, rate, gateways))
    }
  }
  for (const system of systems) report(median(runs.get(system) ?? []))
}

console.log(`\nFan-out of one channel, ~300 B updates, ${BUCKET_CYCLE} buckets changing in turn, ${LOAD_SECONDS} s per phase, ${ROUNDS} round(s) per row (median-p99 round shown, every round's p99 in brackets); Pulse with DEBOUNCE_MS 100 (default)\n`)
console.log('| clients × updates/s | gateways | system | p50 (ms) | p99 (ms) | max (ms) | delivered / expected | bytes / update | gateway CPU / update (µs) | RSS/conn (KB) | gateway CPU (% of a core) | client CPU (% of a core) |')
console.log('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
try {
  for (const { clients, rate } of ROWS) await row(clients, rate, SYSTEMS, 2)
  for (const { clients, rate } of SINGLE_ROWS) await row(clients, rate, SINGLE_SYSTEMS, 1)
} finally {
  await bus.close()
  peerPublisher.disconnect()
  // The publishing Socket.IO server never listened, so it has no engine to close.
  for (const connection of socketIoRedis) connection.disconnect()
  for (const teardown of teardowns.reverse()) await teardown()
}

const ratio = (a: number, b: number): string => b === 0 ? '-' : `${(a / b).toFixed(2)}×`
console.log('\nPulse / peer (p99, CPU):')
const compared = [...ROWS.map((r) => ({ ...r, gateways: 2 })), ...SINGLE_ROWS.map((r) => ({ ...r, gateways: 1 }))]
for (const { clients, rate, gateways } of compared) {
  const row = results.filter((r) => r.clients === clients && r.rate === rate && r.gateways === gateways)
  const peers = row.filter((r) => !r.system.startsWith('pulse-'))
  const best = peers.reduce<Result | undefined>((a, b) => a === undefined || b.p99 < a.p99 ? b : a, undefined)
  const bare = row.find((r) => r.system === 'ws')
  for (const pulse of row.filter((r) => r.system.startsWith('pulse-') && !r.system.endsWith('-delta'))) {
    const parts: string[] = []
    if (best !== undefined) parts.push(`p99 ${ratio(pulse.p99, best.p99)} the better peer (${best.system})`)
    if (bare !== undefined) parts.push(`p99 ${ratio(pulse.p99, bare.p99)} bare ws, CPU ${ratio(pulse.cpuPct, bare.cpuPct)} bare ws`)
    if (parts.length > 0) console.log(`${clients} × ${rate}${gateways === 1 ? ' (one gateway)' : ''}, ${pulse.system}: ${parts.join('; ')}`)
  }
  for (const delta of row.filter((r) => r.system.endsWith('-delta'))) {
    const full = row.find((r) => r.system === delta.system.replace(/-delta$/, ''))
    if (full === undefined) continue
    console.log(`${clients} × ${rate}, ${delta.system} / ${full.system}: bytes per update ${(100 * delta.bytesPerUpdate / full.bytesPerUpdate).toFixed(0)} %, gateway CPU per delivered update ${ratio(delta.cpuPerUpdateUs, full.cpuPerUpdateUs)}`)
  }
}

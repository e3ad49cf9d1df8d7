/**
 * Cost at rest with many tickers: Redis commands per second issued by each Pulse process
 * (one worker, one gateway; cluster mode on a real `redis-server`, dynalite as the archive)
 * once TICKERS tickers have each had one item and nothing else happens.
 *
 * Phases (windows of a minute, so each holds one finalizer run): (1) nothing ingested yet;
 * (2) one item posted per ticker, dated 11 minutes ago (so its 1m, 5m and 10m buckets have
 * ended and the window measures rest, not the finalizing of a thousand buckets at once),
 * a settle pause for the write-behind, then a quiet window; (3) two `GET /api/v2/tickers`. Commands are counted
 * with MONITOR and attributed to the process owning each client socket (`ss -tnp`); a
 * script counts once (the calls it makes inside Redis are not client commands).
 * Run: `npx tsx bench/idle-cost.bench.ts` (IDLE_TICKERS, IDLE_WINDOW_MS, IDLE_SETTLE_MS to change).
 */
import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { type ManagedProcess, startDynaliteProcess, startPulseProcess, TEST_INGEST_KEY } from '../test/helpers/processes.js'
import { startRedisServer } from '../test/helpers/redis-server.js'
import { printTable } from './table.js'

const TICKER_COUNT = Number(process.env.IDLE_TICKERS ?? 1000)
const WINDOW_MS = Number(process.env.IDLE_WINDOW_MS ?? 60_000)
const SETTLE_MS = Number(process.env.IDLE_SETTLE_MS ?? 60_000)
const TICKERS = Array.from({ length: TICKER_COUNT }, (_, i) => `T${String(i).padStart(4, '0')}`)

/** pid of the process owning each local TCP port connected to `redisPort`. */
function portOwners (redisPort: number): Map<number, number> {
  const owners = new Map<number, number>()
  const out = execFileSync('ss', ['-tnpH', 'dst', `127.0.0.1:${redisPort}`], { encoding: 'utf8' })
  for (const line of out.split('\n')) {
    const local = /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:\d+/.exec(line)
    const pid = /pid=(\d+)/.exec(line)
    if (local?.[1] !== undefined && pid?.[1] !== undefined) owners.set(Number(local[1]), Number(pid[1]))
  }
  return owners
}

/** Client commands per second of each process over `ms`, from MONITOR. */
async function commandsPerProcess (redisUrl: string, redisPort: number, processes: Record<string, ManagedProcess>, ms: number, during?: () => Promise<void>): Promise<{ rates: Record<string, number>, totals: Record<string, number>, top: Record<string, string> }> {
  const monitor = new Redis(redisUrl)
  const counts = new Map<number, number>()
  const commands = new Map<number, Map<string, number>>()
  const feed = await monitor.monitor()
  feed.on('monitor', (_time: string, args: string[], source: string) => {
    const port = /:(\d+)$/.exec(source)?.[1]
    if (port === undefined) return
    counts.set(Number(port), (counts.get(Number(port)) ?? 0) + 1)
    let byName = commands.get(Number(port))
    if (byName === undefined) commands.set(Number(port), byName = new Map())
    const name = (args[0] ?? '').toLowerCase()
    byName.set(name, (byName.get(name) ?? 0) + 1)
  })
  const began = Date.now()
  await during?.()
  await sleep(Math.max(0, ms - (Date.now() - began)))
  const seconds = (Date.now() - began) / 1000
  const owners = portOwners(redisPort)
  feed.disconnect()
  monitor.disconnect()
  const rates: Record<string, number> = {}
  const totals: Record<string, number> = {}
  const top: Record<string, string> = {}
  for (const [name, proc] of Object.entries(processes)) {
    let total = 0
    const names = new Map<string, number>()
    for (const [port, count] of counts) {
      if (owners.get(port) !== proc.pid()) continue
      total += count
      for (const [command, n] of commands.get(port) ?? []) names.set(command, (names.get(command) ?? 0) + n)
    }
    rates[name] = Math.round(total / seconds * 10) / 10
    totals[name] = total
    top[name] = [...names].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([c, n]) => `${c} ${n}`).join(', ')
  }
  return { rates, totals, top }
}

const cleanups: Array<() => unknown> = []
const owner = { teardown: (fn: () => unknown) => { cleanups.push(fn) } }
try {
  const redis = await startRedisServer(owner)
  const dynalite = await startDynaliteProcess(owner)
  const env = {
    REDIS_URL: redis.url,
    DYNAMODB_ENDPOINT: dynalite.endpoint,
    PULSE_ENV: `idle${randomUUID().slice(0, 8)}`,
    TICKERS: TICKERS.join(',')
  }
  const worker = await startPulseProcess(owner, { role: 'worker', env })
  const gateway = await startPulseProcess(owner, { role: 'gateway', env })
  const processes = { worker, gateway }
  await sleep(3000)
  const rows: Array<Record<string, string | number>> = []
  const row = (phase: string, result: Awaited<ReturnType<typeof commandsPerProcess>>, unit: string): void => {
    rows.push({ phase, unit, worker: result.rates.worker ?? 0, gateway: result.rates.gateway ?? 0, 'worker top': result.top.worker ?? '', 'gateway top': result.top.gateway ?? '' })
  }

  row('nothing ingested', await commandsPerProcess(redis.url, redis.port, processes, WINDOW_MS), 'commands/s')

  const now = new Date(Date.now() - 11 * 60_000).toISOString()
  for (let i = 0; i < TICKERS.length; i += 500) {
    const items = TICKERS.slice(i, i + 500).map((ticker) => ({ id: `idle-${ticker}`, ticker, timestamp: now, score: 0.25, source: 'bench' }))
    const res = await fetch(`${gateway.url}/api/v2/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_INGEST_KEY}` },
      body: JSON.stringify(items)
    })
    if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${await res.text()}`)
  }
  await sleep(SETTLE_MS)
  row('at rest, one item per ticker', await commandsPerProcess(redis.url, redis.port, processes, WINDOW_MS), 'commands/s')

  for (const which of ['first', 'second']) {
    const listing = await commandsPerProcess(redis.url, redis.port, processes, 1500, async () => {
      const res = await fetch(`${gateway.url}/api/v2/tickers`)
      if (!res.ok) throw new Error(`GET /api/v2/tickers answered ${res.status}`)
      await res.arrayBuffer()
    })
    row(`${which} GET /api/v2/tickers (1.5 s window)`, { ...listing, rates: listing.totals }, 'commands')
  }

  printTable(`Redis commands per process, ${TICKER_COUNT} tickers, one worker and one gateway (cluster mode), ${WINDOW_MS / 1000} s windows, ${new Date().toISOString()}`, rows)
} finally {
  for (const fn of cleanups.reverse()) await fn()
}

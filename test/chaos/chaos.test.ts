import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { type Bucket, labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { bucketId } from '../../shared/timeseries/keys.js'
import { RESOLUTIONS, type Resolution } from '../../shared/timeseries/resolutions.js'
import { differences, expectedBuckets } from '../helpers/expected.js'
import { compare, postOnce, startFaultCluster, waitForArchive, waitForHot } from '../helpers/fault-cluster.js'
import type { ManagedProcess } from '../helpers/processes.js'
import { ChaosClient, mulberry32, type Random } from '../helpers/chaos-clients.js'

/**
 * The chaos test: 2 gateways, 2 workers, Redis (AOF) and dynalite as real processes; WS and
 * SSE clients subscribed across tickers and resolutions; a steady ingest stream with resends
 * and late items; and a seeded random schedule of faults. At the end, with no fault left,
 * history from every gateway, every DynamoDB row and every client's last state equal an
 * independent fold of the accepted items.
 *
 * `CHAOS_SEED=n npm run test:chaos` replays a schedule; CI runs the fixed default seed.
 */

const SEED = Number(process.env.CHAOS_SEED ?? 20261130)
const FAULT_PHASE_MS = Number(process.env.CHAOS_FAULT_MS ?? 70_000)
const TICKERS = ['AAPL', 'MSFT', 'NVDA', 'JPM']
const LEASE_MS = 4000
const CONVERGE_MS = 60_000

type FaultKind = 'kill-worker' | 'kill-gateway' | 'restart-redis' | 'kill-pubsub' | 'pause-archive'
const KINDS: FaultKind[] = ['kill-worker', 'kill-gateway', 'restart-redis', 'kill-pubsub', 'pause-archive']

interface PlannedFault { at: number, kind: FaultKind, target: number, holdMs: number }

/** Every kind once in a seeded order, then seeded extras, spread over the fault phase. */
function planFaults (random: Random): PlannedFault[] {
  const kinds = [...KINDS]
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[kinds[i], kinds[j]] = [kinds[j] as FaultKind, kinds[i] as FaultKind]
  }
  for (let extra = 0; extra < 3; extra++) kinds.push(KINDS[Math.floor(random() * KINDS.length)] as FaultKind)
  const slot = FAULT_PHASE_MS / kinds.length
  return kinds.map((kind, i) => ({
    at: Math.round(i * slot + random() * slot * 0.3),
    kind,
    target: Math.floor(random() * 2),
    // The archive pause outlasts the flush lease, so a second flusher takes the buckets over.
    holdMs: kind === 'pause-archive' ? LEASE_MS + 2000 + Math.round(random() * 2000) : 500 + Math.round(random() * 2000)
  }))
}

/** Items of the stream: recent and late (up to 2 h), resends of earlier items mixed in. */
function makeBatch (random: Random, sequence: number, earlier: readonly ScoredItem[]): ScoredItem[] {
  const now = Date.now()
  const size = 5 + Math.floor(random() * 30)
  const batch: ScoredItem[] = []
  for (let i = 0; i < size; i++) {
    if (earlier.length > 0 && random() < 0.1) {
      batch.push(earlier[Math.floor(random() * earlier.length)] as ScoredItem)
      continue
    }
    const score = Math.round((random() * 2 - 1) * 1e4) / 1e4
    const late = random() < 0.2
    batch.push({
      id: `c${sequence}-${i}`,
      ticker: TICKERS[Math.floor(random() * TICKERS.length)] as string,
      ts: now - (late ? Math.floor(random() * 7_200_000) : Math.floor(random() * 20_000)),
      score,
      label: labelFor(score),
      source: ['tiingo', 'finnhub', 'newsapi'][Math.floor(random() * 3)] as string
    })
  }
  return batch
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}

t.test(`chaos (seed ${SEED}): every client, the hot state and the archive converge to the fold of the accepted items`, async (t) => {
  const random = mulberry32(SEED)
  const cluster = await startFaultCluster(t, {
    tickers: TICKERS,
    gateways: 2,
    workers: 2,
    aof: true,
    env: { FLUSH_LEASE_MS: String(LEASE_MS), DEBOUNCE_MS: '50' }
  })
  const gateways = cluster.gateways
  const alive = new Set<number>([0, 1])
  const liveGateway = (): ManagedProcess => {
    const live = [...alive]
    return gateways[live[Math.floor(random() * live.length)] ?? 0] as ManagedProcess
  }

  // Clients across tickers and resolutions, on both transports and both gateways.
  const clients: ChaosClient[] = []
  for (let i = 0; i < 6; i++) {
    const tickers = TICKERS.filter((_, k) => (k + i) % 2 === 0 || i === 0)
    const resolutions = RESOLUTIONS.filter((_, k) => (k + i) % 3 !== 0)
    const client = new ChaosClient(`client${i}`, i % 3 === 2 ? 'sse' : 'ws', tickers, resolutions, () => gateways[i % 2] as ManagedProcess, liveGateway)
    clients.push(client)
    t.teardown(() => client.stop())
  }
  await Promise.all(clients.map(async (client) => await client.start()))

  // The producer: one batch every ~80 ms to a live gateway, retried (on any gateway) until a 202.
  const accepted: ScoredItem[] = []
  const production = { on: true }
  let batches = 0
  const producer = (async () => {
    for (let sequence = 0; production.on; sequence++) {
      const batch = makeBatch(random, sequence, accepted)
      for (;;) {
        const status = await postOnce(liveGateway(), batch)
        if (status === 202) break
        await sleep(100)
      }
      accepted.push(...batch)
      batches++
      await sleep(80)
    }
  })()

  const admin = new Redis(cluster.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  admin.on('error', () => {})
  t.teardown(() => admin.disconnect())
  const schedule = planFaults(random)
  t.comment(`seed ${SEED}; schedule (ms from start: fault, target, hold):`)
  for (const fault of schedule) t.comment(`  ${fault.at} ${fault.kind} #${fault.target} ${fault.holdMs} ms`)

  const began = Date.now()
  for (const fault of schedule) {
    await sleep(Math.max(0, began + fault.at - Date.now()))
    const at = Date.now() - began
    switch (fault.kind) {
      case 'kill-worker': {
        const worker = cluster.workers[fault.target] as ManagedProcess
        await worker.kill('SIGKILL')
        await sleep(fault.holdMs)
        await worker.start()
        break
      }
      case 'kill-gateway': {
        const gateway = gateways[fault.target] as ManagedProcess
        alive.delete(fault.target)
        await gateway.kill('SIGKILL')
        // Clients that were on it notice the close and resume on the other gateway.
        await sleep(fault.holdMs)
        await gateway.start()
        alive.add(fault.target)
        break
      }
      case 'restart-redis':
        await cluster.redis.restart()
        await sleep(fault.holdMs)
        break
      case 'kill-pubsub':
        await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub').catch(() => {})
        await sleep(fault.holdMs)
        break
      case 'pause-archive': {
        const pid = cluster.dynalite.pid() as number
        process.kill(pid, 'SIGSTOP')
        await sleep(fault.holdMs)
        process.kill(pid, 'SIGCONT')
        break
      }
    }
    t.comment(`${at} ms: ${fault.kind} #${fault.target} done after ${Date.now() - began - at} ms`)
  }
  production.on = false
  await producer
  const quiet = Date.now()
  t.comment(`faults over after ${quiet - began} ms; ${batches} batches, ${accepted.length} items accepted (resends included)`)

  // Convergence, with no fault left and no new item: every check polls at once, and each
  // reports how long after the last fault it first held.
  const expected = expectedBuckets(accepted, Date.now())
  const converge = async (check: () => Promise<string[]>): Promise<{ ms: number, problems: string[] }> => {
    for (;;) {
      const problems = await check().catch((err: unknown) => [`check failed: ${String(err)}`])
      if (problems.length === 0 || Date.now() - quiet > CONVERGE_MS) return { ms: Date.now() - quiet, problems }
      await sleep(250)
    }
  }
  const checks: Array<[string, () => Promise<string[]>]> = [
    ['hot state', async () => (await waitForHot(cluster, accepted, 0)).problems],
    ['archive (expected buckets)', async () => {
      const dirty = await cluster.hot.dirtyCount()
      return [...(dirty === 0 ? [] : [`${dirty} buckets still dirty`]), ...(await waitForArchive(cluster, accepted, 0)).problems]
    }],
    ['archive (no other rows)', async () => {
      const extra: string[] = []
      const now = Date.now()
      for (const ticker of TICKERS) {
        for (const resolution of RESOLUTIONS) {
          for (const bucket of await cluster.archive.range(ticker, resolution, 0, now + 86_400_000, now)) {
            if (!expected.has(bucketId(bucket))) extra.push(`${bucketId(bucket)} in the archive but not in the fold`)
          }
        }
      }
      return extra
    }],
    ...gateways.map((gateway, index): [string, () => Promise<string[]>] => [`history from gateway ${index}`, async () => {
      const stored: Bucket[] = []
      for (const ticker of TICKERS) {
        for (const resolution of RESOLUTIONS) stored.push(...await history(gateway, ticker, resolution))
      }
      const { problems } = compare(accepted, stored)
      for (const bucket of stored) if (!expected.has(bucketId(bucket))) problems.push(`${bucketId(bucket)} served but not in the fold`)
      return problems
    }]),
    ...clients.map((client): [string, () => Promise<string[]>] => [`${client.name} (${client.kind})`, async () => {
      const problems: string[] = []
      for (const [key, want] of expected) {
        if (!client.watches(want.ref.ticker, want.ref.resolution)) continue
        const held = client.bucket(key) as Parameters<typeof differences>[0]
        problems.push(...differences(held, want.aggregate).map((p) => `${key}: ${p}`))
      }
      return problems
    }])
  ]
  const results = await Promise.all(checks.map(async ([name, check]) => ({ name, ...(await converge(check)) })))
  for (const result of results) {
    t.same(result.problems.slice(0, 5), [], `${result.name} equals the fold (${result.problems.length === 0 ? `converged ${result.ms} ms after the last fault` : `still ${result.problems.length} differences after ${result.ms} ms`})`)
  }
  t.comment(`client reconnects: ${clients.map((client) => `${client.name} ${client.reconnects}`).join(', ')}`)
  const times = results.filter((result) => result.problems.length === 0)

  const ms = times.map((time) => time.ms)
  t.comment(`time to converge over ${times.length} checks: p50 ${percentile(ms, 50)} ms, max ${Math.max(...ms)} ms`)
})

/** The buckets a gateway's history answers for a series (complete and partial). */
async function history (gateway: ManagedProcess, ticker: string, resolution: Resolution): Promise<Bucket[]> {
  const res = await fetch(`${gateway.url}/api/v2/timeseries/${ticker}?resolution=${resolution}`)
  if (res.status !== 200) throw new Error(`history ${ticker} ${resolution}: ${res.status}`)
  const body = await res.json() as { buckets: WireBucket[], partial_bucket: WireBucket | null }
  return [...body.buckets, ...(body.partial_bucket === null ? [] : [body.partial_bucket])].map((b) => ({ ...b, start: Date.parse(b.timestamp) }) as unknown as Bucket)
}

interface WireBucket { ticker: string, resolution: Resolution, timestamp: string, [field: string]: unknown }

import { setTimeout as sleep } from 'node:timers/promises'
import { applyRetentionScale } from '../../shared/timeseries/resolutions.js'
import { metricValue, parsePrometheus } from '../../test/helpers/prometheus.js'
import { ChurningClients, type ClientStats } from './clients.js'
import { IngestStream, type IngestStats } from './ingest.js'
import { checkArchive, checkHistory, type LossReport } from './lost.js'
import { figuresOf, type Growth, growthOf, growthTable, sampleTable } from './report.js'
import { type Sample, Sampler } from './sampler.js'
import { type SoakMode, type SoakSystem, startCluster, startEmbedded, Teardowns } from './topology.js'

export interface SoakOptions {
  /** Length of the load in each mode. */
  minutes: number
  /** Samples before this are the warm-up, not judged. */
  warmupMinutes: number
  sampleSeconds: number
  tickers: number
  itemsPerSecond: number
  clients: number
  /** `PULSE_TEST_RETENTION_SCALE` of the processes (and of the expected fold here). */
  retentionScale: number
  log: (line: string) => void
  /** Run the modes side by side rather than one after the other (the short soak of the tests). */
  concurrent?: boolean
}

/** What one mode's soak found. */
export interface ModeResult {
  mode: SoakMode
  samples: Sample[]
  growth: Growth[]
  losses: LossReport[]
  ingest: IngestStats
  clients: ClientStats
  /** Whether the queues and the write-behind emptied after the load stopped and stayed empty (within 3 minutes). */
  drained: boolean
  /** The printed report: every sample, the growth verdict, the loss check. */
  report: string
}

/** Tickers T0000, T0001, …; the last one only ever gets the queue-age probe. */
export function soakTickers (count: number): string[] {
  return Array.from({ length: count }, (_, i) => `T${String(i).padStart(4, '0')}`)
}

/**
 * The longest time the write-behind may hold back the newest state of a bucket that kept
 * changing (30 flush intervals at the default 1 s), plus a margin.
 */
const SETTLE_MS = 35_000

/**
 * Waits until no batch is waiting or active and no bucket is dirty in any process, and
 * stays so for {@link SETTLE_MS}: then every accepted item is folded and every bucket's
 * newest state is in the archive.
 */
async function drained (system: SoakSystem, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  let quietSince: number | undefined
  while (Date.now() < deadline) {
    let pending = 0
    for (const { proc } of system.processes) {
      const samples = parsePrometheus(await fetch(`${proc.url}/metrics`).then(async (r) => await r.text()).catch(() => ''))
      pending += (metricValue(samples, 'pulse_queue_jobs', { state: 'waiting' }) ?? 0) + (metricValue(samples, 'pulse_queue_jobs', { state: 'active' }) ?? 0)
      pending += metricValue(samples, 'pulse_write_behind_backlog') ?? 0
    }
    if (pending > 0) quietSince = undefined
    else quietSince ??= Date.now()
    if (quietSince !== undefined && Date.now() - quietSince >= SETTLE_MS) return true
    await sleep(1000)
  }
  return false
}

/** Runs the soak of one mode: start, load with sampling, drain, the loss check, teardown. */
export async function soakMode (mode: SoakMode, options: SoakOptions): Promise<ModeResult> {
  const { log } = options
  const teardowns = new Teardowns()
  try {
    const tickers = soakTickers(options.tickers)
    const probeTicker = tickers.at(-1) as string
    log(`[${mode}] starting: ${options.tickers} tickers, ${options.itemsPerSecond} items/s, ${options.clients} stream clients, retention ÷ ${options.retentionScale}, ${options.minutes} min`)
    const system = mode === 'embedded'
      ? await startEmbedded(teardowns, { tickers, retentionScale: options.retentionScale })
      : await startCluster(teardowns, { tickers, retentionScale: options.retentionScale })
    const sampler = new Sampler(system)
    teardowns.teardown(async () => await sampler.close())
    const ingest = new IngestStream({ gateways: system.gateways, tickers: tickers.slice(0, -1), probeTicker, itemsPerSecond: options.itemsPerSecond, duplicateShare: 0.05, lateShare: 0.1 })
    const clients = new ChurningClients(system.gateways, tickers.slice(0, -1))
    teardowns.teardown(() => clients.stop())

    const samples: Sample[] = [await sampler.sample(0, await ingest.probe())]
    const began = Date.now()
    ingest.start()
    clients.start(options.clients)
    const endAt = began + options.minutes * 60_000
    const interval = options.sampleSeconds * 1000
    for (;;) {
      // The next slot on the 30 s grid: a probe that waited long skips slots rather than bunching samples.
      const due = began + (Math.floor((Date.now() - began) / interval) + 1) * interval
      if (due > endAt + 1000) break
      await sleep(Math.max(0, due - Date.now()))
      const age = await ingest.probe()
      const sample = await sampler.sample((Date.now() - began) / 1000, age)
      samples.push(sample)
      log(`[${mode}] t=${Math.round(sample.at)} s: ${ingest.stats.accepted} items accepted, ${clients.open} streams open, queue ${sample.queueDepth}, age ${age === undefined ? 'unseen' : `${age} ms`}`)
    }
    clients.stop()
    await ingest.stop()
    const isDrained = await drained(system, 180_000)
    log(`[${mode}] load stopped; ${isDrained ? 'drained' : 'NOT drained within 3 minutes'}; checking the archive and every history against the fold of ${ingest.ledger.length} accepted items`)
    const losses = [
      await checkArchive(system, sampler.dynamo, ingest.ledger, ingest.uncertain),
      await checkHistory(system, tickers, ingest.ledger, ingest.uncertain)
    ]
    const figures = figuresOf(mode, system.processes.map((p) => p.name), options.tickers)
    const warmupSeconds = options.warmupMinutes * 60
    const growth = growthOf(figures, samples, warmupSeconds)
    const report = [
      `== ${mode}: ${options.minutes} min, warm-up ${options.warmupMinutes} min, a sample every ${options.sampleSeconds} s`,
      sampleTable(figures, samples, warmupSeconds),
      '',
      growthTable(figures, growth),
      '',
      `ingest: ${JSON.stringify(ingest.stats)}; uncertain items ${ingest.uncertain.length}`,
      `stream clients: ${JSON.stringify(clients.stats)}`,
      ...losses.map((l) => `${l.store}: ${l.compared} buckets compared, ${l.unverifiable} unverifiable, ${l.problems.length === 0 ? 'nothing lost or counted twice' : `PROBLEMS:\n  ${l.problems.join('\n  ')}`}`)
    ].join('\n')
    return { mode, samples, growth, losses, ingest: ingest.stats, clients: clients.stats, drained: isDrained, report }
  } finally {
    await teardowns.run()
  }
}

/** The soak of each mode in turn; the retention scale holds in this process for the expected fold, and is restored after. */
export async function runSoak (modes: readonly SoakMode[], options: SoakOptions): Promise<ModeResult[]> {
  applyRetentionScale(options.retentionScale)
  try {
    if (options.concurrent === true) return await Promise.all(modes.map(async (mode) => await soakMode(mode, options)))
    const results: ModeResult[] = []
    for (const mode of modes) results.push(await soakMode(mode, options))
    return results
  } finally {
    applyRetentionScale(1)
  }
}

/** Nothing lost in any store of any mode. */
export function nothingLost (result: ModeResult): boolean {
  return result.drained && result.losses.every((l) => l.problems.length === 0)
}

/** Every judged figure flat after the warm-up. */
export function allFlat (result: ModeResult): boolean {
  return result.growth.every((g) => g.notJudged !== undefined || g.flat)
}

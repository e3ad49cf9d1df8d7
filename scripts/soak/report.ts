import { expiryGraceMs } from '../../shared/adapters/redis/fold-plan.js'
import { DURATION_MS, RETENTION_MS } from '../../shared/timeseries/resolutions.js'
import type { SoakMode } from './topology.js'
import type { Sample } from './sampler.js'

/** Most a figure may grow from just after the warm-up to the end and still count as flat. */
export const FLAT_GROWTH = 0.05
/** A queue age not seen within the probe's 60 s counts as 60 s. */
const UNSEEN_AGE_MS = 60_000
const MB = 1024 * 1024
/** Growth of a heap below this is noise (a worker's live heap wandered 38–55 MB with no trend over a 21-minute soak). */
const HEAP_NOISE_BYTES = 10 * MB

/** One figure of the table: how to read it from a sample, show it, and judge it. */
interface Figure {
  name: string
  read: (s: Sample) => number | undefined
  show: (v: number) => string
  /**
   * Growth below this absolute amount is noise, whatever the percentage (a queue of 0
   * batches that holds 2 at the end has not grown in any way that matters).
   */
  floor: number
  /** Why the figure is shown but not judged; undefined: judged. */
  notJudged?: string
  /**
   * Seconds the figure takes to level, when longer than the run's warm-up: it is judged
   * from then on, and not at all in a run too short to show a level after it.
   */
  warmupSeconds?: number
  /** Why the figure takes {@link warmupSeconds} to level. */
  warmupReason?: string
  /**
   * Judge the figure by its trend rather than by two windows (see {@link growthOf}): memory,
   * whose samples dip and spike — RSS drops by 20–40 MB when the allocator hands pages back
   * and follows a worker's heap up by 100 MB between collections — and the embedded store.
   */
  trend?: boolean
}

/** The judged window after a warm-up: two minutes, at least the last sample. */
const JUDGED_SECONDS = 120

/**
 * How long the count of Redis bucket keys takes to level at the current retention (read
 * when the figures are made, after the soak applied its scale). A bucket's keys live its
 * length + retention + {@link expiryGraceMs} (fold-plan.ts) from its start, so keys of
 * the series that turn over within the run (1m, 5m, 10m) pile up for that long before as
 * many expire as are made; the coarser series add one key a ticker at each of their
 * boundaries, a step rather than a slope. With retention ÷ 1440 the grace is at its floor
 * (5 min: items still come up to 5 minutes early): 10 + 1 + 5 = 16 minutes.
 */
export function hotKeysWarmupSeconds (): number {
  const turnover = (['1m', '5m', '10m'] as const).map((r) => DURATION_MS[r] + RETENTION_MS[r])
  return (Math.max(...turnover) + expiryGraceMs()) / 1000
}

const mb = (v: number): string => (v / MB).toFixed(1)
const whole = (v: number): string => String(Math.round(v))
const seconds = (v: number): string => (v / 1000).toFixed(2)

/** The figures of a mode, in the table's column order. */
export function figuresOf (mode: SoakMode, processes: readonly string[], tickers: number): Figure[] {
  const figures: Figure[] = []
  for (const name of processes) {
    // RSS swings with the heap's garbage (a worker's went 175–325 MB sample to sample) and dips
    // when the allocator hands pages back.
    figures.push({ name: `${name} rss MB`, read: (s) => s.rss[name], show: mb, floor: 0, trend: true })
    // The heap kept after each full collection (pulse_heap_live_bytes): no garbage in it.
    figures.push({ name: `${name} live heap MB`, read: (s) => s.heap[name], show: mb, floor: HEAP_NOISE_BYTES, trend: true })
    // RSS that grows while heap and external stay flat is native memory outside JavaScript's reach.
    figures.push({ name: `${name} ext MB`, read: (s) => s.external[name], show: mb, floor: HEAP_NOISE_BYTES, trend: true })
  }
  if (mode === 'embedded') {
    figures.push({ name: 'journal MB', read: (s) => s.journalBytes, show: mb, floor: 0 })
    figures.push({ name: 'journal segs', read: (s) => s.journalSegments, show: whole, floor: 0 })
  }
  // In cluster mode dynalite stands in for DynamoDB but does not delete expired rows as
  // DynamoDB's TTL does, so only rows within their ttl say anything about Pulse.
  const standIn = mode === 'cluster' ? 'dynalite (standing in for DynamoDB) never deletes expired rows' : undefined
  // The embedded store's files grow and shrink with LevelDB's compactions (3–9 MB sample to
  // sample), and its rows with the expiry sweeps (8,300–9,900 every 10 minutes): by trend.
  figures.push({ name: 'archive MB', read: (s) => s.archiveBytes, show: mb, floor: 0, trend: true, ...(standIn === undefined ? {} : { notJudged: standIn }) })
  figures.push({ name: 'archive rows', read: (s) => s.archiveRows, show: whole, floor: 0, trend: true, ...(standIn === undefined ? {} : { notJudged: standIn }) })
  figures.push({ name: 'live rows ≤10m', read: (s) => s.archiveLiveRows, show: whole, floor: 0 })
  // A row a ticker appears at each 1h–24h boundary and goes a scaled retention after its
  // bucket ends (1h: 60 + 30 minutes later at ÷ 1440): steps a 21-minute run cannot see level.
  figures.push({ name: 'live rows ≥1h', read: (s) => s.archiveCoarseLiveRows, show: whole, floor: 0, notJudged: 'a row a ticker at each 1h–24h boundary, gone 1.5 h to days later at this scale: steps, not a trend' })
  if (mode === 'cluster') {
    const hotKeys = { warmupSeconds: hotKeysWarmupSeconds(), warmupReason: `bucket keys live length + retention + ${Math.round(expiryGraceMs() / 60_000)} min grace` }
    figures.push({ name: 'redis MB', read: (s) => s.redisUsedMemory, show: mb, floor: 0, ...hotKeys })
    figures.push({ name: 'redis keys', read: (s) => s.redisKeys, show: whole, floor: 0, ...hotKeys })
    // A ticker's dirty set (no TTL, gone when empty) comes and goes with its unwritten buckets.
    figures.push({ name: 'keys no TTL', read: (s) => s.redisPersistentKeys, show: whole, floor: tickers })
    figures.push({ name: 'redis cmd/s', read: (s) => s.redisCommandsPerSecond, show: whole, floor: 100 })
  }
  figures.push({ name: 'queue depth', read: (s) => s.queueDepth, show: whole, floor: 10 })
  figures.push({ name: 'queue age s', read: (s) => s.queueAgeMs ?? UNSEEN_AGE_MS, show: seconds, floor: 2000 })
  return figures
}

/** A figure just after the warm-up and at the end. */
export interface Growth {
  figure: string
  base: number
  end: number
  /** (end − base) / base. */
  growth: number
  flat: boolean
  notJudged: string | undefined
}

/**
 * Growth of every figure after the warm-up (the run's, or the figure's own when longer):
 * the largest value of the first few samples after it against the largest of the last few
 * (the same number, up to four: two minutes at 30 s), so a figure that rises and falls with
 * the minute — buckets opening and expiring — is compared peak to peak; memory (live heap,
 * external, RSS) by the trend of its block middles (`trendOf` below). Flat: grew by at most {@link FLAT_GROWTH} or by less than the figure's noise floor.
 */
export function growthOf (figures: readonly Figure[], samples: readonly Sample[], warmupSeconds: number): Growth[] {
  const values = (rows: readonly Sample[], figure: Figure): number[] => rows.map((s) => figure.read(s)).filter((v): v is number => v !== undefined && Number.isFinite(v))
  const peak = (rows: readonly Sample[], figure: Figure): number => figure.trend === true
    ? median(values(rows, figure))
    : Math.max(...rows.map((s) => figure.read(s) ?? -Infinity))
  /**
   * A memory figure from its first judged sample to its last: a Theil–Sen line through the
   * middle value of each block of {@link BLOCK_SAMPLES} samples. A dip or a spike is one
   * sample of its block, which its middle value ignores, and a block that still catches one
   * is one point among many, which a median of slopes ignores; comparing two windows' least
   * values instead let one dip decide (a 21-minute run called a flat gateway RSS "+24 %").
   * Undefined: too few blocks for a line.
   */
  const trendOf = (rows: readonly Sample[], figure: Figure): { base: number, end: number } | undefined => {
    const middles: Array<[number, number]> = []
    for (let i = 0; i + BLOCK_SAMPLES <= rows.length; i += BLOCK_SAMPLES) {
      const block = rows.slice(i, i + BLOCK_SAMPLES)
      const known = values(block, figure)
      if (known.length > 0) middles.push([(block[1] ?? block[0] as Sample).at, median(known)])
    }
    if (middles.length < 4) return undefined
    const { slope, intercept } = theilSen(middles)
    const first = rows[0]?.at ?? 0
    const last = rows.at(-1)?.at ?? first
    return { base: intercept + slope * first, end: intercept + slope * last }
  }
  const lastAt = samples.at(-1)?.at ?? 0
  return figures.map((figure) => {
    const tooShort = figure.warmupSeconds !== undefined && figure.warmupSeconds > warmupSeconds && lastAt < figure.warmupSeconds + JUDGED_SECONDS
      ? `levels after ${Math.round(figure.warmupSeconds / 60)} min (${figure.warmupReason ?? 'its own warm-up'}), past this run`
      : undefined
    // A figure the run is too short to judge is shown over the run's warm-up.
    const warmup = tooShort === undefined ? Math.max(warmupSeconds, figure.warmupSeconds ?? 0) : warmupSeconds
    const judged = samples.filter((s) => s.at >= warmup)
    // A warm-up as long as the run leaves the last sample to judge against itself.
    const after = judged.length > 0 ? judged : samples.slice(-1)
    const window = Math.max(1, Math.min(4, Math.floor(after.length / 3)))
    const trend = figure.trend === true ? trendOf(after, figure) : undefined
    const base = trend?.base ?? peak(after.slice(0, window), figure)
    const end = trend?.end ?? peak(after.slice(-window), figure)
    const growth = base > 0 ? (end - base) / base : (end > 0 ? Infinity : 0)
    return { figure: figure.name, base, end, growth, flat: end - base <= Math.max(FLAT_GROWTH * base, figure.floor), notJudged: figure.notJudged ?? tooShort }
  })
}

/** Samples per block whose middle value is one point of a memory figure's trend: 2.5 min at the default 30 s, longer than the gateways' RSS dips come (every 2–2.5 min in a 21-minute soak), so a block's middle value is the level between them. */
const BLOCK_SAMPLES = 5

function median (values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/**
 * The Theil–Sen line through `points`: the median of the slopes between every two points,
 * and the median intercept at that slope. Up to about a third of the points can be anything
 * without moving it much, unlike a least-squares line.
 */
export function theilSen (points: ReadonlyArray<[number, number]>): { slope: number, intercept: number } {
  const slopes: number[] = []
  points.forEach(([x1, y1], i) => {
    for (const [x2, y2] of points.slice(i + 1)) if (x2 !== x1) slopes.push((y2 - y1) / (x2 - x1))
  })
  const slope = slopes.length === 0 ? 0 : median(slopes)
  return { slope, intercept: median(points.map(([x, y]) => y - slope * x)) }
}

function align (rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((cell, i) => cell.padStart(widths[i] as number)).join('  ')).join('\n')
}

/** Every sample as a row, the start, the first sample after the warm-up and the end marked. */
export function sampleTable (figures: readonly Figure[], samples: readonly Sample[], warmupSeconds: number): string {
  const warm = samples.find((s) => s.at >= warmupSeconds)
  const rows = [['t s', ...figures.map((f) => f.name)]]
  samples.forEach((s, i) => {
    const mark = i === 0 ? ' start' : s === warm ? ' warm' : i === samples.length - 1 ? ' end' : ''
    rows.push([`${Math.round(s.at)}${mark}`, ...figures.map((f) => {
      const v = f.read(s)
      return v === undefined || Number.isNaN(v) ? '-' : f.show(v)
    })])
  })
  return align(rows)
}

/** The growth verdict, one figure a line. */
export function growthTable (figures: readonly Figure[], growth: readonly Growth[]): string {
  const rows = [['figure', 'after warm-up', 'end', 'growth', 'verdict']]
  growth.forEach((g, i) => {
    const show = (figures[i] as Figure).show
    const pct = Number.isFinite(g.growth) ? `${(g.growth * 100).toFixed(1)} %` : '∞'
    rows.push([g.figure, show(g.base), show(g.end), pct, g.notJudged !== undefined ? `not judged: ${g.notJudged}` : g.flat ? 'flat' : 'GROWS'])
  })
  return align(rows)
}

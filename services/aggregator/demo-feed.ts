import pLimit from 'p-limit'
import { faultPoint } from '../../shared/fault-points.js'
import type { Archive } from '../../shared/ports/archive.js'
import type { HotState } from '../../shared/ports/hot-state.js'
import type { IngestQueue } from '../../shared/ports/ingest-queue.js'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'

/** How far back the demo history reaches: the 1h resolution's retention, so every resolution has a chart. */
export const BACKFILL_SPAN_MS = 7 * 24 * 3_600_000
/** Demo history items across all tickers at most; with many tickers each gets a sparser history. */
export const BACKFILL_MAX_ITEMS = 60_000
/** Items per queued backfill batch (the ingest API's own batch limit). */
const BACKFILL_BATCH = 1000
/** Backfill batches allowed to wait in the queue before the next is added: live items never queue behind a flood. */
const BACKFILL_QUEUE_DEPTH = 2
/** Tickers backfilled together: with many tickers, the first groups have whole histories long before the last. */
const BACKFILL_GROUP = 50
/** Longest wait for the queue to finish earlier work (a journal replay) before the history check. */
const SETTLE_TIMEOUT_MS = 60_000

const SOURCES = ['tiingo', 'finnhub', 'newsapi', 'benzinga', 'reuters']

/**
 * Mean gap between a ticker's demo articles by their age: busy in the last hours, quieter
 * further back, like a real news flow (and cheap on the resolutions that keep little).
 */
const DENSITY: ReadonlyArray<{ untilAgeMs: number, meanGapMs: number }> = [
  { untilAgeMs: 6 * 3_600_000, meanGapMs: 2 * 60_000 },
  { untilAgeMs: 24 * 3_600_000, meanGapMs: 8 * 60_000 },
  { untilAgeMs: BACKFILL_SPAN_MS, meanGapMs: 25 * 60_000 }
]

export interface DemoFeedOptions {
  queue: IngestQueue
  /** Read (with the archive) to tell whether a ticker already has history; never written here. */
  hot: HotState
  archive: Archive
  /** Tickers backfilled at start (and fed live unless `liveTickers` is given). */
  tickers: readonly string[]
  /** The tickers live items go to, read on every tick (the registry's active tickers, so added ones get items and retired ones none). */
  liveTickers?: () => readonly string[]
  now: () => number
  /** Live items per second across all tickers; default grows with the ticker count (4 to 50). */
  itemsPerSecond?: number
  /** Backfill the last {@link BACKFILL_SPAN_MS} for tickers without history (default true). */
  backfill?: boolean
  random?: () => number
  onError?: (err: unknown) => void
  onBackfilled?: (report: BackfillReport) => void
}

/** What the start-up backfill did. */
export interface BackfillReport {
  /** Tickers that got a demo history. */
  filled: number
  /** Tickers left alone because the store already has history for them (or could not say). */
  skipped: number
  items: number
}

export interface DemoFeed {
  /** Resolves once the backfill has queued its last batch (or decided there was nothing to do). */
  backfill: Promise<BackfillReport>
  stop: () => void
}

/** Seeded uniform numbers in [0, 1) (mulberry32), so a ticker's demo history looks the same on every run. */
function seeded (seed: string): () => number {
  let state = 2166136261
  for (let i = 0; i < seed.length; i++) state = Math.imul(state ^ seed.charCodeAt(i), 16777619)
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const clamp = (value: number): number => Math.max(-1, Math.min(1, value))

/** The walk's next level: pulled back towards neutral, nudged at random. */
function step (level: number, random: () => number): number {
  return clamp(level * 0.97 + (random() - 0.5) * 0.25)
}

/** An article's score around the walk's level, to four places. */
function scoreAround (level: number, random: () => number): number {
  return Math.round(clamp(level + (random() - 0.5) * 0.3) * 1e4) / 1e4
}

/** Where a ticker's sentiment stands at start: the live feed continues from here and the history leads up to it. */
function startLevel (ticker: string): number {
  return (seeded(`level:${ticker}`)() - 0.5) * 0.6
}

/**
 * A ticker's demo history, newest first: a seeded random walk walked back from
 * {@link startLevel}, with gaps drawn from the age's {@link DENSITY} stretched by `sparseness`.
 * Ids carry the event time, so two histories of one ticker made at the same start coincide.
 */
export function demoHistory (ticker: string, now: number, sparseness = 1): ScoredItem[] {
  const random = seeded(`history:${ticker}`)
  const items: ScoredItem[] = []
  let level = startLevel(ticker)
  let ts = now - 5000
  for (const band of DENSITY) {
    for (;;) {
      ts -= Math.max(1000, Math.round(-Math.log(1 - random()) * band.meanGapMs * sparseness))
      if (ts <= now - band.untilAgeMs) {
        ts = now - band.untilAgeMs
        break
      }
      level = step(level, random)
      const score = scoreAround(level, random)
      items.push({ id: `demo-bf-${ts.toString(36)}`, ticker, ts, score, label: labelFor(score), source: SOURCES[Math.floor(random() * SOURCES.length)] as string })
    }
  }
  return items
}

/** Expected items of one ticker's history at full density. */
function itemsPerTicker (): number {
  let from = 0
  let total = 0
  for (const band of DENSITY) {
    total += (band.untilAgeMs - from) / band.meanGapMs
    from = band.untilAgeMs
  }
  return total
}

async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms).unref())
}

/**
 * Synthetic items so a new user sees a live, populated dashboard at once.
 *
 * At start, tickers with no history at all (neither the hot state nor the archive holds a
 * 24h bucket of the last {@link BACKFILL_SPAN_MS}) get one: a seeded random walk over that
 * span, queued like any producer's batches, a group of tickers at a time in list order and
 * newest first within it, a few batches at a time so the
 * fold keeps up with live items. The check waits for the queue to finish earlier work first
 * (an embedded journal replays at start), so a restart never backfills a ticker twice; a
 * store that cannot be read counts as holding history. Then, and during the backfill, live
 * items arrive for every ticker, continuing each walk.
 */
export function startDemoFeed (options: DemoFeedOptions): DemoFeed {
  const random = options.random ?? Math.random
  const rate = options.itemsPerSecond ?? Math.max(4, Math.min(50, options.tickers.length / 20))
  const feed = { stopped: false }
  let timer: ReturnType<typeof setInterval> | undefined

  const startLive = (): void => {
    if (feed.stopped || timer !== undefined) return
    const level = new Map(options.tickers.map((ticker) => [ticker, startLevel(ticker)]))
    let counter = 0
    const tickMs = 250
    timer = setInterval(() => {
      const now = options.now()
      const items: ScoredItem[] = []
      const expected = (rate * tickMs) / 1000
      const count = Math.floor(expected) + (random() < expected % 1 ? 1 : 0)
      for (let i = 0; i < count; i++) {
        const pool = options.liveTickers?.() ?? options.tickers
        if (pool.length === 0) break
        const ticker = pool[Math.floor(random() * pool.length)] as string
        const walk = step(level.get(ticker) ?? 0, random)
        level.set(ticker, walk)
        const score = scoreAround(walk, random)
        items.push({
          id: `demo-${now.toString(36)}-${(counter++).toString(36)}`,
          ticker,
          ts: now - Math.floor(random() * 2000),
          score,
          label: labelFor(score),
          source: SOURCES[Math.floor(random() * SOURCES.length)] as string
        })
      }
      if (items.length > 0) options.queue.enqueue(items, now).catch((err: unknown) => options.onError?.(err))
    }, tickMs)
    timer.unref()
  }

  /** Waits until the queue holds no more than `depth` batches (bounded, so a busy queue cannot stall the feed). */
  const queueAtMost = async (depth: number, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while (!feed.stopped && Date.now() < deadline) {
      const counts = await options.queue.counts()
      if (counts.waiting + counts.active <= depth) return
      await sleep(50)
    }
  }

  const hasHistory = async (ticker: string, now: number): Promise<boolean> => {
    try {
      const from = now - BACKFILL_SPAN_MS - 86_400_000
      const to = now + 86_400_000
      if ((await options.hot.range(ticker, '24h', from, to)).length > 0) return true
      return (await options.archive.range(ticker, '24h', from, to, now)).length > 0
    } catch (err) {
      options.onError?.(err)
      return true
    }
  }

  const backfill = async (): Promise<BackfillReport> => {
    if (options.backfill === false) return { filled: 0, skipped: options.tickers.length, items: 0 }
    await queueAtMost(0, SETTLE_TIMEOUT_MS)
    await faultPoint('demo.before-history-check')
    const now = options.now()
    const limit = pLimit(8)
    const empty = (await Promise.all(options.tickers.map(async (ticker) => await limit(async () => await hasHistory(ticker, now) ? undefined : ticker))))
      .filter((ticker): ticker is string => ticker !== undefined)
    // Live items start only now, so the check above never mistakes them for history.
    startLive()
    const sparseness = Math.max(1, (empty.length * itemsPerTicker()) / BACKFILL_MAX_ITEMS)
    // The first tickers of the list (what a dashboard shows first) are filled first, each group newest first.
    const group = new Map(empty.map((ticker, i) => [ticker, Math.floor(i / BACKFILL_GROUP)]))
    const rank = (item: ScoredItem): number => group.get(item.ticker) ?? 0
    const items = empty.flatMap((ticker) => demoHistory(ticker, now, sparseness)).sort((a, b) => rank(a) - rank(b) || b.ts - a.ts)
    for (let i = 0; i < items.length && !feed.stopped; i += BACKFILL_BATCH) {
      await queueAtMost(BACKFILL_QUEUE_DEPTH, SETTLE_TIMEOUT_MS)
      if (feed.stopped) break
      await options.queue.enqueue(items.slice(i, i + BACKFILL_BATCH), options.now())
      await faultPoint('demo.backfill-queued')
    }
    return { filled: empty.length, skipped: options.tickers.length - empty.length, items: items.length }
  }

  const backfilled = backfill().then((report) => {
    options.onBackfilled?.(report)
    return report
  }, (err: unknown) => {
    options.onError?.(err)
    startLive()
    return { filled: 0, skipped: options.tickers.length, items: 0 }
  })
  return {
    backfill: backfilled,
    stop: () => {
      feed.stopped = true
      clearInterval(timer)
    }
  }
}

import type { Bus, BucketEvent, HotState } from '../../shared/ports/index.js'
import { type BucketRef, DURATION_MS, RESOLUTIONS, bucketEnd } from '../../shared/timeseries/index.js'

const MINUTE = 60_000

export interface FinalizerOptions {
  hot: HotState
  bus: Bus
  tickers: readonly string[]
  log: { warn: (obj: object, msg: string) => void }
  /** Time between runs. Default one minute. */
  intervalMs?: number
  /** How far the first run of a process looks back. Default two intervals. */
  firstRunLookbackMs?: number
  /** Longest window any run covers, however long since the last one. Default 24 h. */
  maxCatchUpMs?: number
  /** Clock for the built-in timer. */
  now?: () => number
}

/** What one run did. */
export interface FinalizeReport {
  /** Bucket ends in `(from, to]` were finalized. */
  from: number
  to: number
  /** Buckets published as final. */
  finalized: number
  /** Of those, buckets marked dirty because their stored state predates their end. */
  rewritten: number
}

/** Buckets of `ticker` at every resolution whose end is in `(from, to]`. */
function endedBetween (ticker: string, from: number, to: number): BucketRef[] {
  const refs: BucketRef[] = []
  for (const resolution of RESOLUTIONS) {
    const duration = DURATION_MS[resolution]
    for (let end = (Math.floor(from / duration) + 1) * duration; end <= to; end += duration) {
      refs.push({ ticker, resolution, start: end - duration })
    }
  }
  return refs
}

/**
 * Finalizes buckets once their end has passed: publishes each as a `final` event and makes
 * sure the archive gets a state written after the end (stored `is_partial: false`).
 *
 * Window: a run at `now` covers bucket ends in `(from, to]`, where `to` is `now` rounded
 * down to the minute (every resolution ends on a whole minute) and `from` is the `to` of
 * this process's previous run, so consecutive runs neither overlap nor leave gaps. A
 * process's first run has no previous one: it looks back two intervals, enough to cover a
 * run missed around a restart without re-finalizing a whole day; a 24 h bucket is still
 * caught because its end, like every end, falls inside exactly one run's window. Catch-up
 * after a long pause is capped at `maxCatchUpMs`.
 *
 * `runOnce` is idempotent: a bucket finalized twice is published twice with the same state
 * and rewritten at most once. A cluster scheduler (a BullMQ repeatable job) calls it on any
 * worker and may pass `since` — the previous scheduled run — to make windows exact there.
 */
export class Finalizer {
  readonly #hot: HotState
  readonly #bus: Bus
  readonly #tickers: readonly string[]
  readonly #log: FinalizerOptions['log']
  readonly #intervalMs: number
  readonly #firstRunLookbackMs: number
  readonly #maxCatchUpMs: number
  readonly #now: () => number
  #lastTo: number | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (options: FinalizerOptions) {
    this.#hot = options.hot
    this.#bus = options.bus
    this.#tickers = options.tickers
    this.#log = options.log
    this.#intervalMs = options.intervalMs ?? MINUTE
    this.#firstRunLookbackMs = options.firstRunLookbackMs ?? 2 * this.#intervalMs
    this.#maxCatchUpMs = options.maxCatchUpMs ?? 24 * 60 * MINUTE
    this.#now = options.now ?? Date.now
  }

  /** Runs just after every interval boundary, so finals go out right after buckets end. */
  start (): void {
    const now = this.#now()
    const delay = this.#intervalMs - (now % this.#intervalMs) + 50
    this.#timer = setTimeout(() => {
      this.runOnce(this.#now())
        .catch((err: unknown) => this.#log.warn({ err }, 'finalizer run failed'))
        .finally(() => { if (this.#timer !== undefined) this.start() })
    }, delay)
    this.#timer.unref()
  }

  stop (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Finalizes every bucket of the configured tickers that ended in this run's window. */
  async runOnce (now: number, since?: number): Promise<FinalizeReport> {
    const to = Math.floor(now / MINUTE) * MINUTE
    const from = Math.max(since ?? this.#lastTo ?? to - this.#firstRunLookbackMs, to - this.#maxCatchUpMs)
    const report: FinalizeReport = { from, to, finalized: 0, rewritten: 0 }
    for (const ticker of this.#tickers) {
      const refs = endedBetween(ticker, from, to)
      if (refs.length === 0) continue
      const buckets = await this.#hot.get(refs)
      if (buckets.length === 0) continue
      // A bucket changed after its end was already written as final by the write-behind.
      const stale = buckets.filter((bucket) => bucket.last_updated < bucketEnd(bucket.start, bucket.resolution))
      if (stale.length > 0) await this.#hot.markDirty(stale)
      const events: BucketEvent[] = buckets.map((bucket) => ({ kind: 'final', bucket }))
      await this.#bus.publish(events)
      report.finalized += buckets.length
      report.rewritten += stale.length
    }
    this.#lastTo = Math.max(this.#lastTo ?? to, to)
    return report
  }
}

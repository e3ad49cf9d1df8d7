import pLimit from 'p-limit'
import type { Bus, BucketEvent } from '../../shared/ports/bus.js'
import type { HotState } from '../../shared/ports/hot-state.js'
import { groupByTicker } from '../../shared/timeseries/keys.js'
import { bucketEnd } from '../../shared/timeseries/resolutions.js'

const MINUTE = 60_000

export interface FinalizerOptions {
  hot: HotState
  bus: Bus
  /** The tickers whose buckets are finalized (retired ones too, while their history is readable); a function is read on every run. */
  tickers: readonly string[] | (() => readonly string[])
  log: { warn: (obj: object, msg: string) => void }
  /** Time between runs. Default one minute. */
  intervalMs?: number
  /** How far the first run of a process looks back. Default two intervals. */
  firstRunLookbackMs?: number
  /** Longest window any run covers, however long since the last one. Default 24 h. */
  maxCatchUpMs?: number
  /** Tickers finalized at once (each is a hot-state read and a publish). Default 8. */
  concurrency?: number
  /** Clock for the built-in timer. */
  now?: () => number
}

/** What one run did. */
export interface FinalizeReport {
  /** Bucket ends in `(from, to]` were finalized; `from === to` when another process had already covered `to`. */
  from: number
  to: number
  /** Buckets published as final. */
  finalized: number
  /** Of those, buckets marked dirty because their stored state predates their end. */
  rewritten: number
}

/**
 * Finalizes buckets once their end has passed: publishes each as a `final` event and makes
 * sure the archive gets a state written after the end (stored `is_partial: false`).
 *
 * Window: a run at `now` covers bucket ends in `(from, to]`, where `to` is `now` rounded
 * down to the minute (every resolution ends on a whole minute) and `from` is the finalizer
 * mark — the `to` of the previous run anywhere in the cluster, kept in the hot state
 * ({@link HotState.advanceFinalizedMark}), never later than the hot state's own clock in
 * cluster mode (Redis `TIME`), so a worker whose clock runs ahead cannot finalize buckets
 * still open. Moving the mark is atomic, so however many
 * workers run the job for a minute, one of them finalizes that window and the others find
 * nothing to do; consecutive windows neither overlap nor leave gaps. With no mark (a new
 * or emptied hot state) the run looks back two intervals, enough to cover a run missed
 * around a restart without re-finalizing a whole day; a 24 h bucket is still caught
 * because its end, like every end, falls inside exactly one window. Catch-up after a long
 * pause is capped at `maxCatchUpMs`. The mark moves before the window is published: a
 * worker that dies in between loses those final events (clients still read the buckets as
 * final, since `is_partial` is derived from the clock) rather than the cluster sending
 * them twice.
 *
 * Only tickers with buckets that were open in the window are read ({@link HotState.endedBuckets}),
 * at most `concurrency` at once: a quiet ticker costs nothing.
 */
export class Finalizer {
  readonly #hot: HotState
  readonly #bus: Bus
  readonly #tickers: () => readonly string[]
  readonly #log: FinalizerOptions['log']
  readonly #intervalMs: number
  readonly #firstRunLookbackMs: number
  readonly #maxCatchUpMs: number
  readonly #now: () => number
  readonly #concurrency: number
  #timer: NodeJS.Timeout | undefined

  constructor (options: FinalizerOptions) {
    this.#hot = options.hot
    this.#bus = options.bus
    const tickers = options.tickers
    this.#tickers = typeof tickers === 'function' ? tickers : () => tickers
    this.#log = options.log
    this.#intervalMs = options.intervalMs ?? MINUTE
    this.#firstRunLookbackMs = options.firstRunLookbackMs ?? 2 * this.#intervalMs
    this.#maxCatchUpMs = options.maxCatchUpMs ?? 24 * 60 * MINUTE
    this.#now = options.now ?? Date.now
    this.#concurrency = options.concurrency ?? 8
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

  /**
   * Finalizes every bucket of the configured tickers that ended in this run's window.
   * `since`, when given, sets the window's start instead of the mark (an explicit re-run:
   * the buckets are published again with the same state).
   */
  async runOnce (now: number, since?: number): Promise<FinalizeReport> {
    const wanted = Math.floor(now / MINUTE) * MINUTE
    const window = await this.#hot.advanceFinalizedMark(wanted, MINUTE)
    if (window === undefined && since === undefined) return { from: wanted, to: wanted, finalized: 0, rewritten: 0 }
    // The hot state may have capped the window at its own clock (Redis: a worker clock ahead).
    const to = window?.to ?? wanted
    const from = Math.max(since ?? window?.from ?? to - this.#firstRunLookbackMs, to - this.#maxCatchUpMs)
    const report: FinalizeReport = { from, to, finalized: 0, rewritten: 0 }
    const limit = pLimit(this.#concurrency)
    const tickers = this.#tickers()
    const ended = groupByTicker(await this.#hot.endedBuckets(tickers, from, to))
    const configured = new Set(tickers)
    await Promise.all([...ended].filter(([ticker]) => configured.has(ticker)).map(async ([, refs]) => await limit(async () => {
      const buckets = await this.#hot.get(refs)
      if (buckets.length === 0) return
      // A bucket changed after its end was already written as final by the write-behind.
      const stale = buckets.filter((bucket) => bucket.last_updated < bucketEnd(bucket.start, bucket.resolution))
      if (stale.length > 0) await this.#hot.markDirty(stale)
      const events: BucketEvent[] = buckets.map((bucket) => ({ kind: 'final', bucket }))
      await this.#bus.publish(events)
      report.finalized += buckets.length
      report.rewritten += stale.length
    })))
    return report
  }
}

import type { Archive, HotState } from '../../shared/ports/index.js'
import { type Bucket, bucketId } from '../../shared/timeseries/index.js'

/** The pino methods the flusher logs with. */
export interface FlushLogger {
  warn: (obj: object, msg: string) => void
  debug: (obj: object, msg: string) => void
}

export interface WriteBehindOptions {
  hot: HotState
  archive: Archive
  log: FlushLogger
  /** Time between flushes (config `flushIntervalMs`, default 1 s). */
  flushIntervalMs: number
  /** Buckets taken from the dirty set per round. Default 500. */
  roundSize?: number
  /** Longest wait between failed flushes. Default 30 s. */
  maxBackoffMs?: number
}

/** Counters for metrics. */
export interface WriteBehindStats {
  /** Bucket states handed to the archive successfully. */
  bucketsWritten: number
  flushes: number
  /** Rounds whose `archive.put` failed (their buckets stayed dirty). */
  failedRounds: number
  /** Failed flushes in a row; drives the backoff, back to 0 after a success. */
  consecutiveFailures: number
  /** Dirty buckets left after the last flush. */
  backlog: number
}

/** What one flush did. */
export interface FlushResult {
  written: number
  failed: boolean
  backlog: number
}

/**
 * Write-behind from the hot state to the archive. Every interval it drains the dirty set
 * in rounds and writes each dirty bucket's full current state once — however many items
 * changed it — so archive writes scale with distinct buckets, not with items. A failed
 * write leaves the buckets dirty (the hot state holds one entry per bucket, so the backlog
 * is bounded by distinct buckets) and the next flush waits longer, up to `maxBackoffMs`.
 */
export class WriteBehind {
  readonly #hot: HotState
  readonly #archive: Archive
  readonly #log: FlushLogger
  readonly #intervalMs: number
  readonly #roundSize: number
  readonly #maxBackoffMs: number
  readonly #stats: WriteBehindStats = { bucketsWritten: 0, flushes: 0, failedRounds: 0, consecutiveFailures: 0, backlog: 0 }
  #timer: NodeJS.Timeout | undefined
  #running: Promise<FlushResult> | undefined
  #stopped = false

  constructor (options: WriteBehindOptions) {
    this.#hot = options.hot
    this.#archive = options.archive
    this.#log = options.log
    this.#intervalMs = options.flushIntervalMs
    this.#roundSize = options.roundSize ?? 500
    this.#maxBackoffMs = options.maxBackoffMs ?? 30_000
  }

  get stats (): Readonly<WriteBehindStats> {
    return { ...this.#stats }
  }

  /** Starts flushing every interval. */
  start (): void {
    this.#stopped = false
    this.#schedule()
  }

  /** Flushes at once (after any flush in progress); used on shutdown and by tests. */
  async flushNow (): Promise<FlushResult> {
    while (this.#running !== undefined) await this.#running.catch(() => undefined)
    const running = this.#flush()
    this.#running = running
    try {
      return await running
    } finally {
      if (this.#running === running) this.#running = undefined
    }
  }

  /** Stops the timer and writes what is still dirty. */
  async stop (): Promise<FlushResult> {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    return await this.flushNow()
  }

  #schedule (): void {
    if (this.#stopped) return
    const failures = this.#stats.consecutiveFailures
    const backoff = failures === 0 ? this.#intervalMs : Math.min(this.#maxBackoffMs, this.#intervalMs * 2 ** failures)
    // Jitter only when backing off, so workers do not hammer a recovering archive in step.
    const delay = failures === 0 ? backoff : backoff / 2 + Math.random() * backoff / 2
    this.#timer = setTimeout(() => {
      this.flushNow()
        .catch((err: unknown) => this.#log.warn({ err }, 'write-behind flush crashed'))
        .finally(() => this.#schedule())
    }, delay)
    this.#timer.unref()
  }

  async #flush (): Promise<FlushResult> {
    this.#stats.flushes++
    const written = new Set<string>()
    let failed = false
    for (;;) {
      // Buckets already written in this flush may be dirty again; ask past them so they
      // cannot hide the rest, and leave them for the next interval.
      const limit = written.size + this.#roundSize
      const taken = await this.#hot.takeDirty(limit)
      const round: Bucket[] = taken.filter((bucket) => !written.has(bucketId(bucket)))
      if (round.length === 0) break
      try {
        await this.#archive.put(round)
      } catch (err) {
        failed = true
        this.#stats.failedRounds++
        this.#log.warn({ err, buckets: round.length }, 'archive write failed; buckets stay dirty for the next flush')
        break
      }
      await this.#hot.markClean(round)
      for (const bucket of round) written.add(bucketId(bucket))
      this.#stats.bucketsWritten += round.length
      if (taken.length < limit) break
    }
    this.#stats.consecutiveFailures = failed ? this.#stats.consecutiveFailures + 1 : 0
    this.#stats.backlog = await this.#hot.dirtyCount()
    if (written.size > 0) this.#log.debug({ written: written.size, backlog: this.#stats.backlog }, 'write-behind flushed')
    return { written: written.size, failed, backlog: this.#stats.backlog }
  }
}

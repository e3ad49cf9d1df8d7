import { LRUCache } from 'lru-cache'
import type { Archive } from '../../shared/ports/archive.js'
import type { FlushCadence, HotState } from '../../shared/ports/hot-state.js'
import type { Bucket } from '../../shared/timeseries/bucket.js'
import { bucketId } from '../../shared/timeseries/keys.js'
import { type Resolution, RESOLUTIONS } from '../../shared/timeseries/resolutions.js'

/**
 * Flush intervals between two archive writes of a bucket that keeps changing, per
 * resolution. A 24 h bucket changes with every item about its ticker but nobody needs it
 * in DynamoDB every second: the hot state serves it live. Every bucket is also written
 * once promptly after it ends, so its final state never waits for the cadence. At the
 * default 1 s interval: 1m buckets every 3 s, 5m every 10 s, 10m every 15 s, 1h and
 * longer every 30 s.
 */
export const CADENCE_INTERVALS: Readonly<Record<Resolution, number>> = {
  '1m': 3, '5m': 10, '10m': 15, '1h': 30, '3h': 30, '6h': 30, '12h': 30, '24h': 30
}

/** The cadence of each resolution, in ms, for a flush interval. */
export function flushCadence (flushIntervalMs: number): Record<Resolution, number> {
  const cadence = {} as Record<Resolution, number>
  for (const resolution of RESOLUTIONS) cadence[resolution] = CADENCE_INTERVALS[resolution] * flushIntervalMs
  return cadence
}

/** Longest time between two archive probes while a write-behind backs off. */
const PROBE_EVERY_MS = 1000

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
  /** Shortest time between two timed writes of one bucket, per resolution. Default {@link flushCadence}. */
  cadenceMs?: FlushCadence
  /** Buckets taken from the dirty set per round. Default 500. */
  roundSize?: number
  /** Longest wait between failed flushes. Default 30 s. */
  maxBackoffMs?: number
  /** First wait before a bucket the archive refused is tried again; doubles per refusal. Default 1 s. */
  parkBaseMs?: number
  /** Longest wait of a refused bucket. Default 5 minutes. */
  maxParkMs?: number
  /** Runs after every flush, before the next can start (the embedded journal checkpoints here). */
  onFlushed?: (result: FlushResult) => Promise<void> | void
  /**
   * Longest wait for one call to the hot state or the archive; past it the flush fails and
   * the next one starts (a reply lost in a Redis failover would otherwise hold every later
   * flush forever). The worker passes its flush lease: a call that outlives the lease has
   * lost its buckets to the next flusher anyway. Default 60 s.
   */
  stepTimeoutMs?: number
}

/** Counters for metrics. */
export interface WriteBehindStats {
  /** Bucket states handed to the archive successfully. */
  bucketsWritten: number
  /** Bucket states the archive already held at the same or a newer rev (another flusher was first). */
  bucketsSuperseded: number
  /** Times a bucket the archive refused was parked to be retried later. */
  bucketsParked: number
  flushes: number
  /** Flushes that stopped on a failed write or hot-state call; unwritten buckets stayed dirty. */
  failedRounds: number
  /** Failed flushes in a row; drives the backoff, back to 0 after a success. */
  consecutiveFailures: number
  /** Dirty buckets left after the last flush. */
  backlog: number
  /** Archive probes made while backing off after failed flushes. */
  probes: number
  /** Calls to the hot state or the archive the write-behind stopped waiting for (see `stepTimeoutMs`). */
  stalledSteps: number
}

/** What one flush did. */
export interface FlushResult {
  /** Buckets the archive now holds at the rev taken (written, or already there). */
  written: number
  failed: boolean
  backlog: number
}

/**
 * Write-behind from the hot state to the archive. Every interval it drains the dirty set
 * in rounds and writes each dirty bucket's full current state once — however many items
 * changed it — so archive writes scale with distinct buckets, not with items.
 *
 * Any number of write-behinds may share one hot state: the archive refuses a state older
 * than the one it holds, and a bucket refused that way counts as written for its rev.
 * An archive that does not answer leaves the unwritten buckets dirty (the hot state holds
 * one entry per bucket, so the backlog is bounded by distinct buckets) and the next flush
 * waits longer, up to `maxBackoffMs` — unless a probe finds the archive answering first:
 * while backing off it is asked every interval (at most every second) with a cheap call,
 * one at a time, and the flush runs as soon as one answers. A bucket the archive refuses for itself is parked
 * — handed back to be retried after a wait that doubles with each refusal, up to
 * `maxParkMs` — and the flush goes on, so one bad bucket never holds up the others.
 */
export class WriteBehind {
  readonly #hot: HotState
  readonly #archive: Archive
  readonly #log: FlushLogger
  readonly #intervalMs: number
  readonly #roundSize: number
  readonly #maxBackoffMs: number
  readonly #cadenceMs: FlushCadence
  readonly #parkBaseMs: number
  readonly #maxParkMs: number
  readonly #onFlushed: WriteBehindOptions['onFlushed']
  readonly #stepTimeoutMs: number
  readonly #stats: WriteBehindStats = {
    bucketsWritten: 0, bucketsSuperseded: 0, bucketsParked: 0, flushes: 0, failedRounds: 0, consecutiveFailures: 0, backlog: 0, probes: 0, stalledSteps: 0
  }

  /** Refusals in a row per bucket id, for the parking backoff (bounded: a leak would need that many bad buckets). */
  readonly #refusals = new LRUCache<string, number>({ max: 10_000 })
  #timer: NodeJS.Timeout | undefined
  /** While backing off: asks the archive cheaply every interval whether it is back. */
  #prober: NodeJS.Timeout | undefined
  #probing = false
  #running: Promise<FlushResult> | undefined
  #stopped = false

  constructor (options: WriteBehindOptions) {
    this.#hot = options.hot
    this.#archive = options.archive
    this.#log = options.log
    this.#intervalMs = options.flushIntervalMs
    this.#roundSize = options.roundSize ?? 500
    this.#maxBackoffMs = options.maxBackoffMs ?? 30_000
    this.#cadenceMs = options.cadenceMs ?? flushCadence(options.flushIntervalMs)
    this.#parkBaseMs = options.parkBaseMs ?? 1000
    this.#maxParkMs = options.maxParkMs ?? 5 * 60_000
    this.#onFlushed = options.onFlushed
    this.#stepTimeoutMs = options.stepTimeoutMs ?? 60_000
  }

  get stats (): Readonly<WriteBehindStats> {
    return { ...this.#stats }
  }

  /** Starts flushing every interval. */
  start (): void {
    this.#stopped = false
    this.#schedule()
  }

  /**
   * Writes every dirty bucket at once, cadence or not (after any flush in progress); used
   * on shutdown and by tests.
   */
  async flushNow (): Promise<FlushResult> {
    return await this.#flushExclusive(undefined)
  }

  /** Stops the timer and writes what is still dirty. */
  async stop (): Promise<FlushResult> {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    clearInterval(this.#prober)
    this.#prober = undefined
    return await this.flushNow()
  }

  /** One flush at a time: a timed one waits for a flush in progress, and the other way round. */
  async #flushExclusive (cadenceMs: FlushCadence | undefined): Promise<FlushResult> {
    while (this.#running !== undefined) await this.#running.catch(() => undefined)
    const running = this.#flushThenReport(cadenceMs)
    this.#running = running
    try {
      return await running
    } finally {
      if (this.#running === running) this.#running = undefined
    }
  }

  #schedule (): void {
    if (this.#stopped) return
    const failures = this.#stats.consecutiveFailures
    const backoff = failures === 0 ? this.#intervalMs : Math.min(this.#maxBackoffMs, this.#intervalMs * 2 ** failures)
    // Jitter only when backing off, so workers do not hammer a recovering archive in step.
    const delay = failures === 0 ? backoff : backoff / 2 + Math.random() * backoff / 2
    const flush = (): void => {
      clearTimeout(this.#timer)
      clearInterval(this.#prober)
      this.#timer = undefined
      this.#prober = undefined
      this.#flushExclusive(this.#cadenceMs)
        .catch((err: unknown) => this.#log.warn({ err }, 'write-behind flush crashed'))
        .finally(() => this.#schedule())
    }
    this.#timer = setTimeout(flush, delay)
    this.#timer.unref()
    if (failures === 0) return
    // Backing off: one cheap probe (a table description) at a time, every interval, so the
    // backlog is written as soon as the archive answers again rather than after the backoff.
    const timer = this.#timer
    this.#prober = setInterval(() => {
      if (this.#probing) return
      this.#probing = true
      this.#stats.probes++
      this.#archive.ping()
        .then(() => { if (this.#timer === timer && !this.#stopped) flush() }, () => {})
        .finally(() => { this.#probing = false })
    }, Math.min(this.#intervalMs, PROBE_EVERY_MS))
    this.#prober.unref()
  }

  async #flushThenReport (cadenceMs: FlushCadence | undefined): Promise<FlushResult> {
    const result = await this.#flush(cadenceMs)
    try {
      await this.#onFlushed?.(result)
    } catch (err) {
      this.#log.warn({ err }, 'after-flush hook failed')
    }
    return result
  }

  async #flush (cadenceMs: FlushCadence | undefined): Promise<FlushResult> {
    this.#stats.flushes++
    const handled = new Set<string>()
    const before = this.#stats.bucketsWritten + this.#stats.bucketsSuperseded
    let failed = false
    try {
      await this.#drain(handled, cadenceMs)
    } catch (err) {
      failed = true
      this.#stats.failedRounds++
      this.#log.warn({ err, handled: handled.size }, 'write-behind flush failed; unwritten buckets stay dirty for the next flush')
    }
    const written = this.#stats.bucketsWritten + this.#stats.bucketsSuperseded - before
    this.#stats.consecutiveFailures = failed ? this.#stats.consecutiveFailures + 1 : 0
    this.#stats.backlog = await this.#step('count dirty buckets', this.#hot.dirtyCount()).catch(() => this.#stats.backlog)
    if (written > 0) this.#log.debug({ written, backlog: this.#stats.backlog }, 'write-behind flushed')
    return { written, failed, backlog: this.#stats.backlog }
  }

  /**
   * Writes each dirty bucket at most once, in rounds; rejects when the archive stops
   * answering (what it did not write stays dirty for the next flush).
   */
  async #drain (handled: Set<string>, cadenceMs: FlushCadence | undefined): Promise<void> {
    let limit = this.#roundSize
    for (;;) {
      const taken = await this.#step('take dirty buckets', this.#hot.takeDirty(limit, cadenceMs))
      const fresh = taken.filter((bucket) => !handled.has(bucketId(bucket)))
      const round: Bucket[] = fresh.slice(0, this.#roundSize)
      // Taken but not written in this round: hand them back, or a leasing hot state would
      // keep them from the next flush until their lease ran out.
      const inRound = new Set(round)
      await this.#step('hand back buckets', this.#hot.release(taken.filter((bucket) => !inRound.has(bucket))))
      if (fresh.length === 0) {
        if (taken.length < limit) return
        // Everything in view changed again after its write this flush: those wait for the
        // next interval, so look past them.
        limit = taken.length + this.#roundSize
        continue
      }
      let outcome
      try {
        outcome = await this.#step('write to the archive', this.#archive.put(round))
      } catch (err) {
        await this.#step('hand back buckets', this.#hot.release(round)).catch(() => {})
        throw err
      }
      const done = [...outcome.written, ...outcome.superseded]
      for (const bucket of done) {
        handled.add(bucketId(bucket))
        this.#refusals.delete(bucketId(bucket))
      }
      this.#stats.bucketsWritten += outcome.written.length
      this.#stats.bucketsSuperseded += outcome.superseded.length
      await this.#step('mark buckets clean', this.#hot.markClean(done))
      for (const { bucket, error } of outcome.rejected) {
        handled.add(bucketId(bucket))
        await this.#park(bucket, error)
      }
      if (outcome.failed.length > 0) {
        await this.#step('hand back buckets', this.#hot.release(outcome.failed)).catch(() => {})
        throw outcome.failure ?? new Error('the archive did not write every bucket')
      }
      // Skip past the re-dirtied buckets at the front next time, then a full round.
      limit = taken.length - fresh.length + this.#roundSize
    }
  }

  /** Hands a refused bucket back to be retried after a wait that doubles per refusal in a row. */
  async #park (bucket: Bucket, error: unknown): Promise<void> {
    const id = bucketId(bucket)
    const refusals = (this.#refusals.get(id) ?? 0) + 1
    this.#refusals.set(id, refusals)
    const waitMs = Math.min(this.#maxParkMs, this.#parkBaseMs * 2 ** (refusals - 1))
    this.#stats.bucketsParked++
    this.#log.warn({ err: error, bucket: id, rev: bucket.rev, refusals, retryInMs: waitMs }, 'archive refused a bucket; parked, the others keep flowing')
    await this.#step('park a bucket', this.#hot.release([bucket], waitMs))
  }

  /**
   * `work`, or a rejection once it has taken longer than the step timeout. The call itself
   * cannot be taken back: if it completes later it acts like another flusher (leases and the
   * archive's conditional write keep that safe).
   */
  async #step<T> (what: string, work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        this.#stats.stalledSteps++
        reject(new Error(`write-behind gave up waiting to ${what} after ${this.#stepTimeoutMs} ms`))
      }, this.#stepTimeoutMs)
      timer.unref()
    })
    work.catch(() => {})
    try {
      return await Promise.race([work, deadline])
    } finally {
      clearTimeout(timer)
    }
  }
}

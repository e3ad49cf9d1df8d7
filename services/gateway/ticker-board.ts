import type { Archive } from '../../shared/ports/archive.js'
import type { Bus, Unsubscribe } from '../../shared/ports/bus.js'
import type { HotState } from '../../shared/ports/hot-state.js'
import { type Bucket } from '../../shared/timeseries/bucket.js'
import { type BucketRef, type SeriesKey, bucketId, seriesKey } from '../../shared/timeseries/keys.js'
import { bucketStart } from '../../shared/timeseries/resolutions.js'
import type { ArchiveBreaker } from './archive-breaker.js'
import { eventProblem } from './bus-event-check.js'

/** The resolutions the tickers listing shows. */
export const BOARD_RESOLUTIONS = ['1m', '24h'] as const
type BoardResolution = typeof BOARD_RESOLUTIONS[number]

export interface TickerBoardOptions {
  /** The tickers listed, read on every listing (the registry's active tickers). */
  tickers: () => readonly string[]
  hot: HotState
  archive: Archive
  bus: Bus
  now: () => number
  /** Guards the one archive read of the first load. */
  breaker: ArchiveBreaker
  /** A bus message failed validation and was dropped. */
  onInvalidEvent?: (problem: string, series: SeriesKey) => void
}

/**
 * The newest 1m and 24h bucket of every listed ticker, for `GET /api/v2/tickers`,
 * kept in the gateway: on first use it subscribes to both series of every ticker and reads
 * their current buckets once (hot state, then the archive for what the hot state lacks);
 * from then on the bus keeps it current, and a bus that may have lost messages makes it
 * read the current buckets again. A listing costs no store read, however many tickers.
 * Tickers added at run time are subscribed and read when a listing first names them;
 * retired ones are let go.
 */
export class TickerBoard {
  readonly #options: TickerBoardOptions
  readonly #latest = new Map<SeriesKey, Bucket>()
  /** The subscriptions of each followed ticker. */
  readonly #followed = new Map<string, Unsubscribe[]>()
  #ready: Promise<void> | undefined
  #stopResync: (() => void) | undefined
  #closed = false

  constructor (options: TickerBoardOptions) {
    this.#options = options
  }

  /** The current bucket of `ticker` at `resolution` (null when it has no items), as of `now`. */
  async current (now: number): Promise<(ticker: string, resolution: BoardResolution) => Bucket | null> {
    const listed = this.#options.tickers()
    if (this.#ready === undefined || listed.length !== this.#followed.size || listed.some((ticker) => !this.#followed.has(ticker))) {
      const previous = this.#ready ?? Promise.resolve()
      this.#ready = previous.catch(() => {}).then(async () => await this.#follow(listed)).catch((err: unknown) => {
        this.#ready = undefined
        throw err
      })
    }
    await this.#ready
    return (ticker, resolution) => {
      const bucket = this.#latest.get(seriesKey(ticker, resolution))
      return bucket !== undefined && bucket.start === bucketStart(now, resolution) ? bucket : null
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#stopResync?.()
    const subscriptions = [...this.#followed.values()].flat()
    this.#followed.clear()
    await Promise.all(subscriptions.map(async (unsubscribe) => await unsubscribe()))
  }

  /** Follows exactly `tickers`: subscribes and reads the new ones, lets go of the others. */
  async #follow (tickers: readonly string[]): Promise<void> {
    const { bus } = this.#options
    this.#stopResync ??= bus.onResync(() => { this.#load([...this.#followed.keys()]).catch(() => { this.#ready = undefined }) })
    const wanted = new Set(tickers)
    const gone = [...this.#followed.keys()].filter((ticker) => !wanted.has(ticker))
    for (const ticker of gone) {
      const subscriptions = this.#followed.get(ticker) ?? []
      this.#followed.delete(ticker)
      for (const resolution of BOARD_RESOLUTIONS) this.#latest.delete(seriesKey(ticker, resolution))
      await Promise.all(subscriptions.map(async (unsubscribe) => await unsubscribe()))
    }
    const added = tickers.filter((ticker) => !this.#followed.has(ticker))
    if (added.length === 0) return
    // Subscribed first, so a change that lands during the load is not missed.
    const subscriptions = await Promise.all(added.map(async (ticker) => await Promise.all(BOARD_RESOLUTIONS.map(async (resolution) =>
      await bus.subscribe(seriesKey(ticker, resolution), (event) => this.#receive(ticker, resolution, event))))))
    if (this.#closed) {
      await Promise.all(subscriptions.flat().map(async (unsubscribe) => await unsubscribe()))
      return
    }
    added.forEach((ticker, i) => this.#followed.set(ticker, subscriptions[i] ?? []))
    await this.#load(added)
  }

  /** Reads the current buckets of `tickers` once: the hot state, and the archive for those it lacks. */
  async #load (tickers: readonly string[]): Promise<void> {
    const { hot, archive } = this.#options
    const now = this.#options.now()
    const refs: BucketRef[] = tickers.flatMap((ticker) => BOARD_RESOLUTIONS.map((resolution) => ({ ticker, resolution, start: bucketStart(now, resolution) })))
    if (refs.length === 0) return
    const found = await hot.get(refs)
    const held = new Set(found.map(bucketId))
    const missing = refs.filter((ref) => !held.has(bucketId(ref)))
    // An archive that does not answer leaves those out: the bus brings their next change.
    if (missing.length > 0) found.push(...await this.#options.breaker.run(async () => await archive.get(missing, now)).catch(() => []))
    for (const bucket of found) this.#keep(bucket)
  }

  #receive (ticker: string, resolution: BoardResolution, event: unknown): void {
    const problem = eventProblem({ ticker, resolution }, event)
    if (problem !== undefined) {
      this.#options.onInvalidEvent?.(problem, seriesKey(ticker, resolution))
      return
    }
    this.#keep((event as { bucket: Bucket }).bucket)
  }

  /** Keeps the newest bucket of a series: a later start, or the same one at a higher rev. */
  #keep (bucket: Bucket): void {
    const key = seriesKey(bucket.ticker, bucket.resolution)
    const held = this.#latest.get(key)
    if (held === undefined || bucket.start > held.start || (bucket.start === held.start && bucket.rev > held.rev)) this.#latest.set(key, bucket)
  }
}

import { PulseError } from '../../shared/errors.js'
import type { Archive, BucketEvent, BucketListener, Bus, HotState, Unsubscribe } from '../../shared/ports/index.js'
import {
  type Bucket, type Resolution, type SeriesKey,
  bucketStart, DURATION_MS, isRetained, MAX_FUTURE_MS, RETENTION_MS, seriesKey
} from '../../shared/timeseries/index.js'

export interface SeriesCacheOptions {
  hot: HotState
  archive: Archive
  bus: Bus
  now: () => number
  /** A series nobody reads or watches for this long drops its bus subscription and memory. */
  idleMs?: number
  onError?: (err: unknown, series: SeriesKey) => void
}

interface Entry {
  readonly ticker: string
  readonly resolution: Resolution
  readonly buckets: Map<number, Bucket>
  sorted: Bucket[] | undefined
  refreshedAt: number
  lastUsed: number
  refreshing: Promise<void> | undefined
  unsubscribe: Unsubscribe | undefined
  readonly watchers: Set<BucketListener>
}

export interface SeriesView {
  /** Every retained bucket of the series, ascending by start. */
  buckets: readonly Bucket[]
  /** True when the answer came from memory without touching the stores. */
  hit: boolean
}

/**
 * Revalidation interval per resolution: the bus keeps a watched series current, and this
 * bounds staleness if a bus message was lost (a Redis reconnect). Longer buckets change
 * less often, so they may be trusted longer.
 */
export function revalidateMs (resolution: Resolution): number {
  return Math.min(60_000, Math.max(15_000, DURATION_MS[resolution] / 4))
}

/**
 * The gateway's L1 cache: the whole retained window of each series that is read or
 * watched (at most 360 buckets for any resolution), loaded once from the hot state and the
 * archive (concurrent misses share one load), then kept current by the series' bus
 * channel. Watchers of a series receive every bucket event after it is applied.
 */
export class SeriesCache {
  readonly #options: SeriesCacheOptions
  readonly #entries = new Map<SeriesKey, Entry>()
  hits = 0
  misses = 0
  /** Loads from the stores (concurrent misses of one series count once). */
  loads = 0

  constructor (options: SeriesCacheOptions) {
    this.#options = options
  }

  /** The retained buckets of a series, loading it on first use. */
  async read (ticker: string, resolution: Resolution): Promise<SeriesView> {
    const entry = this.#entry(ticker, resolution)
    const now = this.#options.now()
    entry.lastUsed = now
    let hit = true
    if (entry.refreshedAt === 0) {
      hit = false
      await this.#refresh(entry)
    } else if (now - entry.refreshedAt > revalidateMs(resolution)) {
      this.#refresh(entry).catch(() => {})
    }
    if (hit) this.hits++
    else this.misses++
    return { buckets: this.#sorted(entry, now), hit }
  }

  /** Latest known state of one bucket of a loaded series. */
  peek (ticker: string, resolution: Resolution, start: number): Bucket | undefined {
    return this.#entries.get(seriesKey(ticker, resolution))?.buckets.get(start)
  }

  /**
   * Watches a series: `listener` gets each bucket event after the cache applied it. The
   * series stays subscribed while it has watchers.
   */
  async watch (ticker: string, resolution: Resolution, listener: BucketListener): Promise<() => void> {
    const entry = this.#entry(ticker, resolution)
    entry.watchers.add(listener)
    await this.#subscribe(entry)
    return () => {
      entry.watchers.delete(listener)
      entry.lastUsed = this.#options.now()
    }
  }

  /** Series currently held. */
  get size (): number {
    return this.#entries.size
  }

  /** Drops series nobody used for `idleMs`, with their subscriptions. */
  async sweep (): Promise<void> {
    const now = this.#options.now()
    const idleMs = this.#options.idleMs ?? 300_000
    for (const [key, entry] of this.#entries) {
      if (entry.watchers.size > 0 || now - entry.lastUsed < idleMs) continue
      this.#entries.delete(key)
      await entry.unsubscribe?.()
    }
  }

  async close (): Promise<void> {
    const entries = [...this.#entries.values()]
    this.#entries.clear()
    await Promise.all(entries.map(async (entry) => await entry.unsubscribe?.()))
  }

  #entry (ticker: string, resolution: Resolution): Entry {
    const key = seriesKey(ticker, resolution)
    let entry = this.#entries.get(key)
    if (entry === undefined) {
      entry = {
        ticker,
        resolution,
        buckets: new Map(),
        sorted: undefined,
        refreshedAt: 0,
        lastUsed: this.#options.now(),
        refreshing: undefined,
        unsubscribe: undefined,
        watchers: new Set()
      }
      this.#entries.set(key, entry)
    }
    return entry
  }

  async #subscribe (entry: Entry): Promise<void> {
    if (entry.unsubscribe !== undefined) return
    const key = seriesKey(entry.ticker, entry.resolution)
    const unsubscribe = await this.#options.bus.subscribe(key, (event) => this.#apply(entry, event))
    if (entry.unsubscribe === undefined && this.#entries.get(key) === entry) entry.unsubscribe = unsubscribe
    else await unsubscribe()
  }

  #apply (entry: Entry, event: BucketEvent): void {
    this.#merge(entry, event.bucket)
    for (const watcher of entry.watchers) {
      try {
        watcher(event)
      } catch (err) {
        this.#options.onError?.(err, seriesKey(entry.ticker, entry.resolution))
      }
    }
  }

  #merge (entry: Entry, bucket: Bucket): void {
    const current = entry.buckets.get(bucket.start)
    if (current !== undefined && current.rev >= bucket.rev) return
    entry.buckets.set(bucket.start, bucket)
    entry.sorted = undefined
  }

  /** Loads the retained window from both tiers; the newer rev of a bucket wins. */
  async #refresh (entry: Entry): Promise<void> {
    if (entry.refreshing !== undefined) return await entry.refreshing
    this.loads++
    entry.refreshing = (async () => {
      // Subscribe first, so a change that lands during the load is not missed.
      await this.#subscribe(entry)
      const now = this.#options.now()
      const { ticker, resolution } = entry
      const from = bucketStart(now - RETENTION_MS[resolution], resolution) - DURATION_MS[resolution]
      const to = bucketStart(now + MAX_FUTURE_MS, resolution) + DURATION_MS[resolution]
      const [archived, hot] = await Promise.allSettled([
        this.#options.archive.range(ticker, resolution, from, to, now),
        this.#options.hot.range(ticker, resolution, from, to)
      ])
      if (archived.status === 'rejected' && hot.status === 'rejected') {
        this.#options.onError?.(archived.reason, seriesKey(ticker, resolution))
        throw new PulseError('PULSE_ERR_UNAVAILABLE', 'History is unavailable: neither the hot state nor the archive answered; retry later')
      }
      if (archived.status === 'fulfilled') for (const bucket of archived.value) this.#merge(entry, bucket)
      if (hot.status === 'fulfilled') for (const bucket of hot.value) this.#merge(entry, bucket)
      if (archived.status === 'fulfilled' && hot.status === 'fulfilled') {
        entry.refreshedAt = now
      } else {
        // One tier is down: serve what the other holds (recent data lives in the hot
        // state), and leave the series unloaded so the next read tries both again.
        this.#options.onError?.(archived.status === 'rejected' ? archived.reason : (hot as PromiseRejectedResult).reason, seriesKey(ticker, resolution))
      }
    })()
    try {
      await entry.refreshing
    } finally {
      entry.refreshing = undefined
    }
  }

  #sorted (entry: Entry, now: number): Bucket[] {
    if (entry.sorted === undefined) {
      for (const [start, bucket] of entry.buckets) {
        if (!isRetained(start, bucket.resolution, now)) entry.buckets.delete(start)
      }
      entry.sorted = [...entry.buckets.values()].sort((a, b) => a.start - b.start)
    }
    return entry.sorted
  }
}

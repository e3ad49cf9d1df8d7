import type { PulseClient } from '../../client/src/index.js'
import { fetchTickers, fetchTimeseries, readThrottle, RequestDropped } from './api.js'
import type { Priority } from './request-throttle.js'
import { BucketCache } from './bucket-cache.js'
import { pulseMetrics } from './metrics.js'
import { type Bucket, type Resolution, seriesKey, type TickerSummary } from './model.js'
import { type Series, SeriesStore } from './series-store.js'

/** How far back the ticker list's overview (sparkline) reaches. */
export const OVERVIEW_WINDOW_MS = 30 * 60_000

/** One series changed: a live bucket at its end, late data in its past, or wholesale. */
export interface SeriesChange {
  key: string
  ticker: string
  resolution: Resolution
  kind: 'last' | 'past' | 'all'
  bucket?: Bucket
}

export interface PulseDataOptions {
  /** The Pulse client every read goes through. */
  client: PulseClient
  /** Called with every batch of changes. */
  onChange: (changes: SeriesChange[]) => void
  /** Delay before live changes are written to IndexedDB. */
  persistDelayMs?: number
}

/**
 * The dashboard's data: memory first, IndexedDB second, the server last. Draws come from
 * memory; IndexedDB fills memory on a cold start; the client's snapshots and live states
 * (and history reads where nothing is held yet) reconcile both.
 */
export class PulseData {
  readonly store = new SeriesStore()
  private cache: BucketCache | undefined
  private cacheReady: Promise<void> | undefined
  private readonly inflight = new Map<string, Promise<Series | undefined>>()
  private readonly dirty = new Set<string>()
  private persistTimer: ReturnType<typeof setTimeout> | undefined
  private readonly persistDelayMs: number
  /** When each ticker's overview window was last asked for, epoch ms. */
  private readonly overviewAt = new Map<string, number>()

  constructor (private readonly options: PulseDataOptions) {
    this.persistDelayMs = options.persistDelayMs ?? 2000
  }

  /** Opens IndexedDB; safe to call more than once. */
  async open (): Promise<void> {
    this.cacheReady ??= BucketCache.open().then((cache) => { this.cache = cache })
    await this.cacheReady
  }

  /** Fills memory from IndexedDB when the series is not there yet; true when memory has it now. */
  async loadCached (ticker: string, resolution: Resolution): Promise<boolean> {
    if (this.hasData(ticker, resolution)) return true
    await this.open()
    const entry = await this.cache?.read(seriesKey(ticker, resolution)).catch(() => undefined)
    if (entry === undefined) return false
    const series = this.store.merge(ticker, resolution, entry.buckets, 'idb')
    series.freshAt = Math.max(series.freshAt, entry.savedAt)
    this.emit([{ key: series.key, ticker, resolution, kind: 'all' }])
    return series.buckets.length > 0
  }

  hasData (ticker: string, resolution: Resolution): boolean {
    return (this.store.get(ticker, resolution)?.buckets.length ?? 0) > 0
  }

  /**
   * Asks the server for the series and merges the answer (stale-while-revalidate).
   * Concurrent calls for one series share a request; `maxAgeMs` skips a fresh enough one.
   */
  async revalidate (ticker: string, resolution: Resolution, maxAgeMs = 0): Promise<Series | undefined> {
    const key = seriesKey(ticker, resolution)
    const held = this.store.get(ticker, resolution)
    if (held !== undefined && maxAgeMs > 0 && Date.now() - held.historyAt < maxAgeMs) return held
    let request = this.inflight.get(key)
    if (request === undefined) {
      request = (async () => {
        try {
          const body = await fetchTimeseries(this.options.client, ticker, resolution, { priority: 'high' })
          const buckets = body.partial_bucket === null ? body.buckets : [...body.buckets, body.partial_bucket]
          const series = this.store.merge(ticker, resolution, buckets, 'network')
          if (series.origin === 'idb') series.origin = 'network'
          this.emit([{ key, ticker, resolution, kind: 'all' }])
          this.markDirty(key, 0)
          return series
        } catch (err) {
          console.warn(`Pulse: could not load ${key}`, err)
          return undefined
        } finally {
          this.inflight.delete(key)
        }
      })()
      this.inflight.set(key, request)
    }
    return await request
  }

  /** Cached copies of many series from IndexedDB, all at once (IndexedDB is fast). */
  async loadCachedAll (pairs: ReadonlyArray<readonly [string, Resolution]>): Promise<void> {
    await Promise.all(pairs.map(async ([ticker, resolution]) => await this.loadCached(ticker, resolution)))
  }

  /**
   * The list's overview of one ticker: its 1m buckets of the last {@link OVERVIEW_WINDOW_MS},
   * asked for at low priority and dropped unsent when `wanted()` turns false (the row
   * scrolled away). Live events keep it current afterwards, so it is asked for again only
   * after `maxAgeMs`. The window is not a whole history: it never sets `historyAt`.
   */
  async overview (ticker: string, wanted: () => boolean, maxAgeMs = 120_000): Promise<void> {
    const asked = this.overviewAt.get(ticker)
    if (asked !== undefined && Date.now() - asked < maxAgeMs) return
    if ((this.store.get(ticker, '1m')?.historyAt ?? 0) > Date.now() - maxAgeMs) return
    this.overviewAt.set(ticker, Date.now())
    try {
      const body = await fetchTimeseries(this.options.client, ticker, '1m', { startMs: Date.now() - OVERVIEW_WINDOW_MS, priority: 'low', wanted })
      const buckets = body.partial_bucket === null ? body.buckets : [...body.buckets, body.partial_bucket]
      const series = this.store.merge(ticker, '1m', buckets, 'stream')
      this.emit([{ key: series.key, ticker, resolution: '1m', kind: 'all' }])
    } catch (err) {
      this.overviewAt.delete(ticker)
      if (!(err instanceof RequestDropped)) console.warn(`Pulse: no overview for ${ticker}`, err)
    }
  }

  /** History requests sent so far (all kinds), for the metrics object. */
  get requestsSent (): number {
    return readThrottle.sent
  }

  /** Folds a frame's worth of bucket states from the client into memory and reports what changed. */
  applyBuckets (buckets: readonly Bucket[]): void {
    const changes: SeriesChange[] = []
    const now = Date.now()
    for (const bucket of buckets) {
      const where = this.store.upsert(bucket, 'stream', now)
      if (where === undefined) continue
      const key = seriesKey(bucket.ticker, bucket.resolution)
      changes.push({ key, ticker: bucket.ticker, resolution: bucket.resolution, kind: where, bucket })
      this.markDirty(key, this.persistDelayMs)
    }
    if (changes.length > 0) this.emit(changes)
  }

  /**
   * The client handed out a whole snapshot of the series (applied before this call): it is
   * a confirmed history now, worth keeping in IndexedDB.
   */
  markHistory (ticker: string, resolution: Resolution): void {
    const series = this.store.ensure(ticker, resolution, 'network')
    const now = Date.now()
    series.historyAt = now
    series.freshAt = now
    if (series.origin === 'idb') series.origin = 'network'
    this.emit([{ key: series.key, ticker, resolution, kind: 'all' }])
    this.markDirty(series.key, 0)
  }

  /** Seeds the 1m and 24h current buckets from the ticker list. */
  async loadTickers (priority: Priority = 'high'): Promise<string[]> {
    const rows: TickerSummary[] = await fetchTickers(this.options.client, priority)
    for (const row of rows) {
      for (const bucket of [row.partial_1m, row.partial_24h]) if (bucket !== null) this.store.upsert(bucket, 'network')
    }
    return rows.map((row) => row.ticker)
  }

  /** Writes pending series to IndexedDB now (page hidden or unloading). */
  async persistNow (): Promise<void> {
    clearTimeout(this.persistTimer)
    this.persistTimer = undefined
    await this.open()
    const keys = [...this.dirty]
    this.dirty.clear()
    const entries = []
    for (const key of keys) {
      const [ticker, resolution] = key.split('#') as [string, Resolution]
      const series = this.store.get(ticker, resolution)
      // Only whole histories are worth keeping: an overview window would draw a short chart on reload.
      if (series === undefined || series.buckets.length === 0 || series.historyAt === 0) continue
      entries.push({ key, ticker, resolution, buckets: series.buckets, savedAt: series.freshAt })
    }
    if (this.cache === undefined || entries.length === 0) return
    try {
      await this.cache.write(entries)
      pulseMetrics().cacheWrites += entries.length
    } catch (err) {
      console.warn('Pulse: could not write the local cache', err)
    }
  }

  private markDirty (key: string, delayMs: number): void {
    this.dirty.add(key)
    if (delayMs === 0) {
      clearTimeout(this.persistTimer)
      this.persistTimer = setTimeout(() => { this.persistNow().catch(() => {}) }, 0)
      return
    }
    this.persistTimer ??= setTimeout(() => { this.persistNow().catch(() => {}) }, delayMs)
  }

  private emit (changes: SeriesChange[]): void {
    this.options.onChange(changes)
  }
}

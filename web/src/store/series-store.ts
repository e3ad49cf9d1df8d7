import { isNewerState } from '../../../shared/timeseries/revision.js'
import { type Bucket, bucketStartMs, type Resolution, RESOLUTION_MS, RETENTION_MS, seriesKey } from './model.js'

/** One ticker at one resolution, held in memory. */
export interface Series {
  key: string
  ticker: string
  resolution: Resolution
  /** Ascending by start; the last may be the partial bucket. */
  buckets: Bucket[]
  /** When the server last confirmed this series (snapshot or live event), epoch ms; 0 if never. */
  freshAt: number
  /** When a whole history from the server was last merged, epoch ms; 0 if never. */
  historyAt: number
  /** Where its data came from first in this page. */
  origin: 'idb' | 'network' | 'stream'
}

/** Buckets kept per series: the server never returns more than 1500 per query. */
const MAX_BUCKETS = 1500

function startOf (bucket: Bucket): number {
  return Date.parse(bucket.timestamp)
}

/** Index of the first bucket starting at or after `start`. */
function lowerBound (buckets: readonly Bucket[], start: number): number {
  let lo = 0
  let hi = buckets.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (startOf(buckets[mid] as Bucket) < start) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * The page's memory of bucket history: every series it has seen, merged by bucket start
 * and `rev` so live events, snapshots and cached copies can arrive in any order.
 */
export class SeriesStore {
  private readonly series = new Map<string, Series>()

  get (ticker: string, resolution: Resolution): Series | undefined {
    return this.series.get(seriesKey(ticker, resolution))
  }

  /** Creates the series when missing. */
  ensure (ticker: string, resolution: Resolution, origin: Series['origin']): Series {
    const key = seriesKey(ticker, resolution)
    let series = this.series.get(key)
    if (series === undefined) {
      series = { key, ticker, resolution, buckets: [], freshAt: 0, historyAt: 0, origin }
      this.series.set(key, series)
    }
    return series
  }

  /**
   * Merges one bucket by Pulse's one merge rule ({@link isNewerState}): a copy no newer than the one held is ignored.
   * Returns where it landed: `'last'` when it is (or replaced) the newest bucket,
   * `'past'` for late data about an older one, `undefined` when nothing changed.
   */
  upsert (bucket: Bucket, origin: Series['origin'], now = Date.now()): 'last' | 'past' | undefined {
    const series = this.ensure(bucket.ticker, bucket.resolution, origin)
    if (origin !== 'idb') series.freshAt = now
    const start = startOf(bucket)
    const { buckets } = series
    const i = lowerBound(buckets, start)
    const existing = buckets[i]
    if (existing !== undefined && startOf(existing) === start) {
      if (!isNewerState(bucket, existing)) return undefined
      buckets[i] = bucket
      return i === buckets.length - 1 ? 'last' : 'past'
    }
    buckets.splice(i, 0, bucket)
    if (buckets.length > MAX_BUCKETS) buckets.splice(0, buckets.length - MAX_BUCKETS)
    return i >= buckets.length - 1 ? 'last' : 'past'
  }

  /** Merges a whole history (snapshot or cached copy), then drops what is past retention. */
  merge (ticker: string, resolution: Resolution, buckets: readonly Bucket[], origin: Series['origin'], now = Date.now()): Series {
    const series = this.ensure(ticker, resolution, origin)
    for (const bucket of buckets) this.upsert(bucket, origin, now)
    if (origin !== 'idb') series.freshAt = now
    if (origin === 'network') series.historyAt = now
    this.prune(series, now)
    return series
  }

  private prune (series: Series, now: number): void {
    const oldest = now - RETENTION_MS[series.resolution] - RESOLUTION_MS[series.resolution]
    const keep = lowerBound(series.buckets, oldest)
    if (keep > 0) series.buckets.splice(0, keep)
  }
}

/** The bucket containing `now`, if it has items. */
export function currentBucket (series: Series | undefined, now = Date.now()): Bucket | undefined {
  const last = series?.buckets.at(-1)
  if (last === undefined || series === undefined) return undefined
  return startOf(last) === bucketStartMs(now, series.resolution) ? last : undefined
}

/** The newest bucket and the one before it, for a ticker's headline figures. */
export function latestPair (series: Series | undefined): { latest?: Bucket, previous?: Bucket } {
  if (series === undefined) return {}
  const { buckets } = series
  const latest = buckets.at(-1)
  const previous = buckets.at(-2)
  return { ...(latest === undefined ? {} : { latest }), ...(previous === undefined ? {} : { previous }) }
}

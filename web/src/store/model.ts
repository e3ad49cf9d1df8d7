import type { LabelCounts, WireBucket } from '../../../shared/timeseries/bucket.js'
import { DURATION_MS, type Resolution } from '../../../shared/timeseries/resolutions.js'

/** The eight resolutions in selector order (keys 1–8), and their rules: the server's own. */
export { isResolution, RESOLUTIONS, RETENTION_MS, type Resolution } from '../../../shared/timeseries/resolutions.js'
export type { LabelCounts }

/** Most `ticker#resolution` series one stream connection may watch: the gateway's own limit. */
export { MAX_SUBSCRIPTIONS } from '../../../shared/stream-limits.js'

/** Bucket length of each resolution, milliseconds. */
export const RESOLUTION_MS = DURATION_MS

/** A bucket as the server sends it (SPEC §2). */
export type Bucket = WireBucket

/** `GET /api/v2/timeseries/{ticker}` and the WebSocket `snapshot` reply. */
export interface TimeseriesResponse {
  ticker: string
  resolution: Resolution
  buckets: Bucket[]
  partial_bucket: Bucket | null
  cache_hit: boolean
  query_time_ms: number
}

/** One row of `GET /api/v2/tickers`. */
export interface TickerSummary {
  ticker: string
  partial_1m: Bucket | null
  partial_24h: Bucket | null
}

/** A change of one bucket, from either transport (SPEC §4). */
export interface BucketEvent {
  type: 'partial_bucket' | 'bucket_update'
  id?: string
  ticker: string
  resolution: Resolution
  bucket: Bucket
  accepted_at?: string
}

/** The key of one series in memory and in IndexedDB: `TICKER#resolution`. */
export function seriesKey (ticker: string, resolution: Resolution): string {
  return `${ticker}#${resolution}`
}

/** Start of the bucket containing `ms`, aligned to the Unix epoch. */
export function bucketStartMs (ms: number, resolution: Resolution): number {
  const d = RESOLUTION_MS[resolution]
  return Math.floor(ms / d) * d
}

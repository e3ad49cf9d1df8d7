/** The eight resolutions, in selector order (keys 1–8). */
export const RESOLUTIONS = ['1m', '5m', '10m', '1h', '3h', '6h', '12h', '24h'] as const

export type Resolution = typeof RESOLUTIONS[number]

const MINUTE = 60_000
const HOUR = 60 * MINUTE

/** Bucket length of each resolution, milliseconds. */
export const RESOLUTION_MS: Readonly<Record<Resolution, number>> = {
  '1m': MINUTE,
  '5m': 5 * MINUTE,
  '10m': 10 * MINUTE,
  '1h': HOUR,
  '3h': 3 * HOUR,
  '6h': 6 * HOUR,
  '12h': 12 * HOUR,
  '24h': 24 * HOUR
}

/** How long the server keeps buckets of each resolution (SPEC §2), milliseconds. */
export const RETENTION_MS: Readonly<Record<Resolution, number>> = {
  '1m': 6 * HOUR,
  '5m': 12 * HOUR,
  '10m': 24 * HOUR,
  '1h': 7 * 24 * HOUR,
  '3h': 14 * 24 * HOUR,
  '6h': 30 * 24 * HOUR,
  '12h': 60 * 24 * HOUR,
  '24h': 90 * 24 * HOUR
}

/** Narrows a string from storage or the wire to a resolution. */
export function isResolution (value: unknown): value is Resolution {
  return typeof value === 'string' && (RESOLUTIONS as readonly string[]).includes(value)
}

export interface LabelCounts {
  positive: number
  neutral: number
  negative: number
}

/** A bucket as the server sends it (SPEC §2). */
export interface Bucket {
  ticker: string
  resolution: Resolution
  /** Bucket start, ISO 8601 UTC. */
  timestamp: string
  open: number
  high: number
  low: number
  close: number
  count: number
  sum: number
  avg: number
  label_counts: LabelCounts
  sources: string[]
  last_updated: string
  is_partial: boolean
  rev: number
  progress_pct?: number
  next_update_at?: string
}

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

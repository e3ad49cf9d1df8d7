import type { LabelCounts } from '../../../shared/timeseries/bucket.js'
import { DURATION_MS, type Resolution } from '../../../shared/timeseries/resolutions.js'

/** The eight resolutions in selector order (keys 1–8), and their rules: the server's own. */
export { isResolution, RESOLUTIONS, RETENTION_MS, type Resolution } from '../../../shared/timeseries/resolutions.js'
export type { LabelCounts }

/** Most `ticker#resolution` series one stream connection may watch: the gateway's own limit. */
export { MAX_SUBSCRIPTIONS } from '../../../shared/stream-limits.js'

/** Bucket length of each resolution, milliseconds. */
export const RESOLUTION_MS = DURATION_MS

/** A bucket, the history response and the ticker summary as the server sends them: the client SDK's types. */
export type { Bucket, HistoryResponse as TimeseriesResponse, TickerSummary } from '../../client/src/index.js'

/** The key of one series in memory and in IndexedDB: `TICKER#resolution`. */
export function seriesKey (ticker: string, resolution: Resolution): string {
  return `${ticker}#${resolution}`
}

/** Start of the bucket containing `ms`, aligned to the Unix epoch. */
export function bucketStartMs (ms: number, resolution: Resolution): number {
  const d = RESOLUTION_MS[resolution]
  return Math.floor(ms / d) * d
}

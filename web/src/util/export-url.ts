import { RESOLUTION_MS, type Resolution } from '../store/model.js'

/** Bucket starts of the first and last bar on screen, epoch ms. */
export interface BarRange {
  first: number
  last: number
}

/**
 * The CSV export of one series (`GET /api/v2/timeseries/{ticker}/export`), relative to the
 * page so it works under any path the dashboard is served from. With `bars`, the range is
 * from the first bar on screen to the end of the last one; without, the whole retained
 * series.
 */
export function exportUrl (ticker: string, resolution: Resolution, bars?: BarRange): string {
  const query = new URLSearchParams({ resolution, format: 'csv' })
  if (bars !== undefined) {
    query.set('start', new Date(bars.first).toISOString())
    query.set('end', new Date(bars.last + RESOLUTION_MS[resolution]).toISOString())
  }
  return `api/v2/timeseries/${encodeURIComponent(ticker)}/export?${query.toString()}`
}

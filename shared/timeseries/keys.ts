import { type Resolution, DURATION_MS, RESOLUTIONS, isResolution } from './resolutions.js'

/**
 * A series is one ticker at one resolution: the DynamoDB partition key and the pub/sub
 * channel name, `AAPL#5m`. Tickers never contain `#`, so the key splits unambiguously.
 */
export type SeriesKey = `${string}#${Resolution}`

export function seriesKey (ticker: string, resolution: Resolution): SeriesKey {
  return `${ticker}#${resolution}`
}

export function parseSeriesKey (key: string): { ticker: string, resolution: Resolution } | undefined {
  const at = key.indexOf('#')
  if (at <= 0) return undefined
  const resolution = key.slice(at + 1)
  if (!isResolution(resolution)) return undefined
  return { ticker: key.slice(0, at), resolution }
}

/** Identity of one bucket: its series and start. */
export interface BucketRef {
  ticker: string
  resolution: Resolution
  /** Bucket start, epoch milliseconds. */
  start: number
}

/** A compact unique string for a bucket, used as a map key: `AAPL#5m@1766313300000`. */
export function bucketId (ref: BucketRef): string {
  return `${ref.ticker}#${ref.resolution}@${ref.start}`
}

/** Idempotency key of an item: `(ticker, id)`. */
export function dedupeKey (ticker: string, id: string): string {
  return `${ticker}#${id}`
}

/** Groups entries (items, buckets, refs) by ticker, keeping their order within each ticker. */
export function groupByTicker<T extends { ticker: string }> (list: readonly T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>()
  for (const entry of list) {
    const group = groups.get(entry.ticker)
    if (group === undefined) groups.set(entry.ticker, [entry])
    else group.push(entry)
  }
  return groups
}

/** Every bucket of `tickers`, at every resolution, whose end is in `(from, to]`. */
export function endedBetween (tickers: readonly string[], from: number, to: number): BucketRef[] {
  const refs: BucketRef[] = []
  for (const ticker of tickers) {
    for (const resolution of RESOLUTIONS) {
      const duration = DURATION_MS[resolution]
      for (let end = (Math.floor(from / duration) + 1) * duration; end <= to; end += duration) {
        refs.push({ ticker, resolution, start: end - duration })
      }
    }
  }
  return refs
}

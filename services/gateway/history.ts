import { quoteValue } from '../../shared/validation-messages.js'
import { PulseError } from '../../shared/errors.js'
import {
  type Bucket, type Resolution, type WireBucket,
  bucketStart, DURATION_MS, RETENTION_MS, toWireBucket
} from '../../shared/timeseries/index.js'
import type { SeriesCache } from './series-cache.js'

/** Longest range one query may span, in buckets. */
export const MAX_RANGE_BUCKETS = 1500

export interface HistoryRequest {
  ticker: string
  resolution: Resolution
  start?: string | undefined
  end?: string | undefined
}

export interface TimeseriesResponse {
  ticker: string
  resolution: Resolution
  buckets: WireBucket[]
  partial_bucket: WireBucket | null
  cache_hit: boolean
  query_time_ms: number
}

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/

function parseTime (text: string, field: 'start' | 'end'): number {
  const ms = ISO_WITH_ZONE.test(text) ? Date.parse(text) : Number.NaN
  if (Number.isNaN(ms)) {
    const message = `${field} must be an ISO 8601 time with zone, like 2025-12-21T10:35:00Z; got ${quoteValue(text)}`
    throw new PulseError('PULSE_ERR_BAD_RANGE', message, [{ field, message }])
  }
  return ms
}

/** Resolves the `[start, end)` window of a request (SPEC §3 defaults) or throws a 400. */
export function resolveRange (request: HistoryRequest, now: number): { from: number, to: number } {
  const { resolution } = request
  const to = request.end === undefined ? now : parseTime(request.end, 'end')
  const from = request.start === undefined ? to - RETENTION_MS[resolution] : parseTime(request.start, 'start')
  if (from >= to) throw new PulseError('PULSE_ERR_BAD_RANGE', `start must be before end; got start ${new Date(from).toISOString()} and end ${new Date(to).toISOString()}`)
  if ((to - from) / DURATION_MS[resolution] > MAX_RANGE_BUCKETS) {
    throw new PulseError('PULSE_ERR_RANGE_TOO_LARGE', `The range must span at most ${MAX_RANGE_BUCKETS} ${resolution} buckets; got ${Math.ceil((to - from) / DURATION_MS[resolution])}`)
  }
  return { from, to }
}

/**
 * Wire form of completed buckets, kept per bucket state: once a bucket has ended its wire
 * form no longer depends on the clock, and a new state is a new object (so no staleness).
 */
const completedWire = new WeakMap<Bucket, WireBucket>()

function completedToWire (bucket: Bucket, now: number): WireBucket {
  let wire = completedWire.get(bucket)
  if (wire === undefined) {
    wire = toWireBucket(bucket, now)
    if (!wire.is_partial) completedWire.set(bucket, wire)
  }
  return wire
}

/** Binary search: index of the first bucket whose start is >= `start`. */
function lowerBound (buckets: readonly Bucket[], start: number): number {
  let lo = 0
  let hi = buckets.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((buckets[mid] as Bucket).start < start) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Answers a history query from the series cache (SPEC §3). */
export async function queryHistory (cache: SeriesCache, request: HistoryRequest, now: () => number): Promise<TimeseriesResponse> {
  const began = performance.now()
  const at = now()
  const { from, to } = resolveRange(request, at)
  const view = await cache.read(request.ticker, request.resolution)
  const current = bucketStart(at, request.resolution)
  const buckets: WireBucket[] = []
  let partial: Bucket | undefined
  for (let i = lowerBound(view.buckets, from); i < view.buckets.length; i++) {
    const bucket = view.buckets[i] as Bucket
    if (bucket.start >= to) break
    if (bucket.start === current) continue
    buckets.push(completedToWire(bucket, at))
  }
  for (let i = view.buckets.length - 1; i >= 0; i--) {
    const bucket = view.buckets[i] as Bucket
    if (bucket.start === current) partial = bucket
    if (bucket.start <= current) break
  }
  return {
    ticker: request.ticker,
    resolution: request.resolution,
    buckets,
    partial_bucket: partial === undefined ? null : toWireBucket(partial, at),
    cache_hit: view.hit,
    query_time_ms: Math.round((performance.now() - began) * 1000) / 1000
  }
}

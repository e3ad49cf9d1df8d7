import { quoteValue } from '../../shared/validation-messages.js'
import { PulseError } from '../../shared/errors.js'
import { type Bucket, type WireBucket, toWireBucket } from '../../shared/timeseries/bucket.js'
import { type Resolution, bucketStart, DURATION_MS, RETENTION_MS } from '../../shared/timeseries/resolutions.js'
import type { SeriesCache } from './series-cache.js'

/** Longest range one query may span, in buckets (WebSocket snapshots; HTTP history pages instead). */
export const MAX_RANGE_BUCKETS = 1500

/** Most completed buckets one HTTP history response holds; `next` leads to the rest. */
export const HISTORY_PAGE_BUCKETS = 1500

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
  /** The archive did not answer: only what the hot state holds (the recent buckets) is included. */
  archive_unavailable: boolean
  /** The series position the answer was read at (a stream client resumes from it). */
  position: string
  /**
   * Only when the range holds more completed buckets than one page: the query string of
   * the following page (`?resolution=…&start=…&end=…`), to be requested on the same path.
   */
  next?: string
}

/** How {@link queryHistory} splits a range into pages (HTTP history); without it the range is capped instead. */
export interface HistoryPaging {
  /** Most completed buckets in one response. */
  size: number
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

/**
 * Resolves the `[start, end)` window of a request (SPEC §3 defaults) or throws a 400.
 * `capped` (the default) refuses a range of more than {@link MAX_RANGE_BUCKETS} buckets;
 * paged and streamed reads pass false.
 */
export function resolveRange (request: HistoryRequest, now: number, capped = true): { from: number, to: number } {
  const { resolution } = request
  const to = request.end === undefined ? now : parseTime(request.end, 'end')
  const from = request.start === undefined ? to - RETENTION_MS[resolution] : parseTime(request.start, 'start')
  if (from >= to) throw new PulseError('PULSE_ERR_BAD_RANGE', `start must be before end; got start ${new Date(from).toISOString()} and end ${new Date(to).toISOString()}`)
  if (capped && (to - from) / DURATION_MS[resolution] > MAX_RANGE_BUCKETS) {
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

/**
 * The query string of the page that follows a full one: the same range, from the bucket
 * after the last one returned (a bucket that appears behind the cursor meanwhile is not
 * one of the pages' buckets, and none is returned twice).
 */
function nextPageQuery (request: HistoryRequest, lastTimestamp: string, to: number): string {
  const query = new URLSearchParams({
    resolution: request.resolution,
    start: new Date(Date.parse(lastTimestamp) + DURATION_MS[request.resolution]).toISOString(),
    end: new Date(to).toISOString()
  })
  return `?${query.toString()}`
}

/**
 * Answers a history query from the series cache (SPEC §3). With `paging`, a range of any
 * length is answered a page at a time (`next` names the following page); without it, a
 * range of more than {@link MAX_RANGE_BUCKETS} buckets is a 400.
 */
export async function queryHistory (cache: SeriesCache, request: HistoryRequest, now: () => number, paging?: HistoryPaging): Promise<TimeseriesResponse> {
  const began = performance.now()
  const at = now()
  const { from, to } = resolveRange(request, at, paging === undefined)
  const view = await cache.read(request.ticker, request.resolution)
  const current = bucketStart(at, request.resolution)
  const buckets: WireBucket[] = []
  let partial: Bucket | undefined
  let next: string | undefined
  for (let i = lowerBound(view.buckets, from); i < view.buckets.length; i++) {
    const bucket = view.buckets[i] as Bucket
    if (bucket.start >= to) break
    if (bucket.start === current) continue
    if (paging !== undefined && buckets.length === paging.size) {
      next = nextPageQuery(request, (buckets[buckets.length - 1] as WireBucket).timestamp, to)
      break
    }
    buckets.push(completedToWire(bucket, at))
  }
  for (let i = view.buckets.length - 1; i >= 0; i--) {
    const bucket = view.buckets[i] as Bucket
    if (bucket.start === current) partial = bucket
    if (bucket.start <= current) break
  }
  const response: TimeseriesResponse = {
    ticker: request.ticker,
    resolution: request.resolution,
    buckets,
    partial_bucket: partial === undefined ? null : toWireBucket(partial, at),
    cache_hit: view.hit,
    archive_unavailable: !view.complete,
    query_time_ms: Math.round((performance.now() - began) * 1000) / 1000,
    position: String(view.position)
  }
  if (next !== undefined) response.next = next
  return response
}

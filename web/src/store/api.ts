import type { Resolution, TickerSummary, TimeseriesResponse } from './model.js'
import { type Priority, RequestThrottle } from './request-throttle.js'

/** A failed request, with the HTTP status when there was one. */
export class ApiError extends Error {
  constructor (message: string, readonly status?: number) {
    super(message)
  }
}

/** Every read this page makes goes through one throttle, so together they stay under the per-IP limit. */
export const readThrottle = new RequestThrottle()

/** A request that was dropped unsent because nobody wanted its answer any more. */
export class RequestDropped extends Error {}

async function getJson<T> (url: string, priority: Priority, wanted?: () => boolean): Promise<T> {
  let res: Response | undefined
  try {
    res = await readThrottle.request(priority, async () => await fetch(url, { headers: { accept: 'application/json' } }), wanted)
  } catch (err) {
    throw new ApiError(`request failed: ${(err as Error).message}`)
  }
  if (res === undefined) throw new RequestDropped(url)
  if (!res.ok) throw new ApiError(`${url}: HTTP ${res.status}`, res.status)
  return await res.json() as T
}

/** `GET /api/v2/tickers`. */
export async function fetchTickers (base: string): Promise<TickerSummary[]> {
  const body = await getJson<{ tickers: TickerSummary[] }>(`${base}/api/v2/tickers`, 'high')
  return body.tickers
}

export interface TimeseriesQuery {
  /** Only buckets from this time on (epoch ms); the default window (the retention) otherwise. */
  startMs?: number
  priority?: Priority
  wanted?: () => boolean
}

/** `GET /api/v2/timeseries/{ticker}?resolution=`, over the retention unless `startMs` narrows it. */
export async function fetchTimeseries (base: string, ticker: string, resolution: Resolution, query: TimeseriesQuery = {}): Promise<TimeseriesResponse> {
  const start = query.startMs === undefined ? '' : `&start=${new Date(query.startMs).toISOString().slice(0, 19)}Z`
  return await getJson<TimeseriesResponse>(`${base}/api/v2/timeseries/${encodeURIComponent(ticker)}?resolution=${resolution}${start}`, query.priority ?? 'high', query.wanted)
}

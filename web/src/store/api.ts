import type { Resolution, TickerSummary, TimeseriesResponse } from './model.js'

/** A failed request, with the HTTP status when there was one. */
export class ApiError extends Error {
  constructor (message: string, readonly status?: number) {
    super(message)
  }
}

async function getJson<T> (url: string, signal?: AbortSignal): Promise<T> {
  let res: Response
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, ...(signal === undefined ? {} : { signal }) })
  } catch (err) {
    throw new ApiError(`request failed: ${(err as Error).message}`)
  }
  if (!res.ok) throw new ApiError(`${url}: HTTP ${res.status}`, res.status)
  return await res.json() as T
}

/** `GET /api/v2/tickers`. */
export async function fetchTickers (base: string, signal?: AbortSignal): Promise<TickerSummary[]> {
  const body = await getJson<{ tickers: TickerSummary[] }>(`${base}/api/v2/tickers`, signal)
  return body.tickers
}

/** `GET /api/v2/timeseries/{ticker}?resolution=` over the default window (the retention). */
export async function fetchTimeseries (base: string, ticker: string, resolution: Resolution, signal?: AbortSignal): Promise<TimeseriesResponse> {
  return await getJson<TimeseriesResponse>(`${base}/api/v2/timeseries/${encodeURIComponent(ticker)}?resolution=${resolution}`, signal)
}

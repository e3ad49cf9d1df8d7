import type { HistoryResponse, PulseClient, Resolution, TickerSummary } from '../../client/src/index.js'
import { type Priority, RequestThrottle } from './request-throttle.js'

/** Every read this page makes goes through one throttle, so together they stay under the per-IP limit. */
export const readThrottle = new RequestThrottle()

/** The client's `fetch`: every answer tells the throttle the gateway's limit and when to pause. */
export const observedFetch: typeof fetch = async (input, init) => {
  const res = await fetch(input, init)
  readThrottle.observe(res)
  return res
}

/** A request that was dropped unsent because nobody wanted its answer any more. */
export class RequestDropped extends Error {}

async function throttled<T> (priority: Priority, run: () => Promise<T>, wanted?: () => boolean): Promise<T> {
  const answer = await readThrottle.request(priority, run, wanted)
  if (answer === undefined) throw new RequestDropped('dropped unsent')
  return answer
}

/** `GET /api/v2/tickers`; `low` for the periodic re-read that follows tickers added and retired at run time. */
export async function fetchTickers (client: PulseClient, priority: Priority = 'high'): Promise<TickerSummary[]> {
  return await throttled(priority, async () => await client.tickers())
}

export interface TimeseriesQuery {
  /** Only buckets from this time on (epoch ms); the default window (the retention) otherwise. */
  startMs?: number
  priority?: Priority
  wanted?: () => boolean
}

/** `GET /api/v2/timeseries/{ticker}?resolution=`, over the retention unless `startMs` narrows it. */
export async function fetchTimeseries (client: PulseClient, ticker: string, resolution: Resolution, query: TimeseriesQuery = {}): Promise<HistoryResponse> {
  return await throttled(query.priority ?? 'high', async () => await client.history(ticker, resolution, query.startMs === undefined ? {} : { start: query.startMs }), query.wanted)
}

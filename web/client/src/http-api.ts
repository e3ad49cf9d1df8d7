/*
 * Pulse's HTTP API as the SDK reads it: history ranges (followed page by page) and the
 * ticker list, with the client's token, retried once with a fresh token when refused.
 */
import { PulseClientError } from './errors.js'
import type { TokenSupply } from './token-supply.js'
import type { ErrorCode, HistoryPage, HistoryResponse, Resolution, TickerSummary } from './types.js'

/** A time for history ranges: epoch ms, a `Date`, or ISO 8601. */
export type TimeInput = number | Date | string

/** A {@link TimeInput} as the API takes it: ISO 8601 to the second. */
export function isoTime (time: TimeInput): string {
  return typeof time === 'string' ? time : `${new Date(time).toISOString().slice(0, 19)}Z`
}

/** Reads the gateway's HTTP API at `base`; a refusal becomes a {@link PulseClientError} with the API's code. */
export class HttpApi {
  readonly #base: URL
  readonly #fetch: typeof fetch
  readonly #tokens: TokenSupply

  constructor (base: URL, fetcher: typeof fetch, tokens: TokenSupply) {
    this.#base = base
    this.#fetch = fetcher
    this.#tokens = tokens
  }

  /** `GET /api/v2/timeseries/{ticker}` over every page of the range, returned whole (see `PulseClient.history`). */
  async history (ticker: string, resolution: Resolution, range: { start?: TimeInput, end?: TimeInput } = {}): Promise<HistoryResponse> {
    const query = new URLSearchParams({ resolution })
    if (range.start !== undefined) query.set('start', isoTime(range.start))
    if (range.end !== undefined) query.set('end', isoTime(range.end))
    const path = `api/v2/timeseries/${encodeURIComponent(ticker)}`
    let page = await this.#get<HistoryPage>(`${path}?${query}`)
    const whole: HistoryPage = { ...page, buckets: [...page.buckets] }
    // `next` is the following page's query string, for the same path.
    while (page.next?.startsWith('?') === true) {
      page = await this.#get<HistoryPage>(`${path}${page.next}`)
      whole.buckets.push(...page.buckets)
      whole.partial_bucket = page.partial_bucket
      whole.cache_hit &&= page.cache_hit
      whole.archive_unavailable ||= page.archive_unavailable
      whole.query_time_ms += page.query_time_ms
    }
    delete whole.next
    return whole
  }

  /** `GET /api/v2/tickers`. */
  async tickers (): Promise<TickerSummary[]> {
    return (await this.#get<{ tickers: TickerSummary[] }>('api/v2/tickers')).tickers
  }

  async #get<T> (path: string, again = true): Promise<T> {
    const token = await this.#tokens.current()
    const res = await this.#fetch(String(new URL(path, this.#base)), { headers: { accept: 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) } })
    if (res.status === 401 && again && this.#tokens.renewable) {
      await res.arrayBuffer().catch(() => {})
      this.#tokens.forget()
      return await this.#get(path, false)
    }
    if (!res.ok) {
      const body = await res.json().catch(() => undefined) as { error?: { code?: ErrorCode, message?: string } } | undefined
      throw new PulseClientError(body?.error?.code ?? 'PULSE_ERR_UNAVAILABLE', body?.error?.message ?? `HTTP ${res.status}`, res.status)
    }
    return await res.json() as T
  }
}

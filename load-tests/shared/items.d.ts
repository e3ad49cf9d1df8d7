/** An item as `POST /api/v2/items` takes it. */
export interface LoadItem {
  id: string
  ticker: string
  timestamp: string
  score: number
  source: string
}

/** A batch of `size` live items spread over `tickers`, ids unique per run. */
export function liveBatch (options: { tickers: readonly string[], size: number, source: string, runId: string, seq: number, now: number }): LoadItem[]
/** History items over the last `hours`, in batches of at most `batchSize`. */
export function historyBatches (options: { tickers: readonly string[], hours: number, everyMinutes: number, batchSize: number, source: string, runId: string, now: number }): LoadItem[][]

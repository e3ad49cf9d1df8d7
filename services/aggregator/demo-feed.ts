import type { IngestQueue } from '../../shared/ports/index.js'
import { labelFor, type ScoredItem } from '../../shared/timeseries/index.js'

export interface DemoFeedOptions {
  queue: IngestQueue
  tickers: readonly string[]
  now: () => number
  /** Items per second across all tickers. */
  itemsPerSecond?: number
  random?: () => number
  onError?: (err: unknown) => void
}

const SOURCES = ['tiingo', 'finnhub', 'newsapi', 'benzinga', 'reuters']

/**
 * Synthetic items so a new user sees live data at once: per ticker a random-walk score in
 * [-1, 1], several sources, a few items a second, queued like any producer's batch.
 */
export function startDemoFeed (options: DemoFeedOptions): { stop: () => void } {
  const random = options.random ?? Math.random
  const rate = options.itemsPerSecond ?? 4
  const level = new Map(options.tickers.map((ticker) => [ticker, (random() - 0.5) * 0.6]))
  let counter = 0
  const tickMs = 250
  const timer = setInterval(() => {
    const now = options.now()
    const items: ScoredItem[] = []
    const expected = (rate * tickMs) / 1000
    const count = Math.floor(expected) + (random() < expected % 1 ? 1 : 0)
    for (let i = 0; i < count; i++) {
      const ticker = options.tickers[Math.floor(random() * options.tickers.length)] as string
      const drift = ((level.get(ticker) ?? 0) * 0.97) + (random() - 0.5) * 0.25
      const walk = Math.max(-1, Math.min(1, drift))
      level.set(ticker, walk)
      const score = Math.round(Math.max(-1, Math.min(1, walk + (random() - 0.5) * 0.3)) * 1e4) / 1e4
      items.push({
        id: `demo-${now.toString(36)}-${(counter++).toString(36)}`,
        ticker,
        ts: now - Math.floor(random() * 2000),
        score,
        label: labelFor(score),
        source: SOURCES[Math.floor(random() * SOURCES.length)] as string
      })
    }
    if (items.length > 0) options.queue.enqueue(items, now).catch((err: unknown) => options.onError?.(err))
  }, tickMs)
  timer.unref()
  return { stop: () => clearInterval(timer) }
}

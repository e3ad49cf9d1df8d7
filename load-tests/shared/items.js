// Plain JavaScript so k6 (goja) and the Node harness share one copy; types in items.d.ts.

function score () {
  return Math.round((Math.random() * 2 - 1) * 1000) / 1000
}

/**
 * A batch of `size` live items (timestamps within the last second) spread over `tickers`.
 * Ids are `runId-seq-i`, unique per run, so dedupe never hides an item.
 */
export function liveBatch ({ tickers, size, source, runId, seq, now }) {
  const items = []
  for (let i = 0; i < size; i++) {
    items.push({
      id: `${runId}-${seq}-${i}`,
      ticker: tickers[(seq * size + i) % tickers.length],
      timestamp: new Date(now - Math.floor(Math.random() * 1000)).toISOString(),
      score: score(),
      source
    })
  }
  return items
}

/**
 * History to query: one item per ticker every `everyMinutes` over the last `hours`, in
 * batches of at most `batchSize`. The oldest item stays inside the 1m retention (6 h).
 */
export function historyBatches ({ tickers, hours, everyMinutes, batchSize, source, runId, now }) {
  const items = []
  const step = everyMinutes * 60000
  for (let t = now - hours * 3600000 + step; t < now - 60000; t += step) {
    for (const ticker of tickers) {
      items.push({ id: `${runId}-h${t}`, ticker, timestamp: new Date(t).toISOString(), score: score(), source })
    }
  }
  const batches = []
  for (let i = 0; i < items.length; i += batchSize) batches.push(items.slice(i, i + batchSize))
  return batches
}

import type { Archive, Bus, HotState, IngestBatch } from '../../shared/ports/index.js'
import { type Bucket, groupByTicker, type ScoredItem } from '../../shared/timeseries/index.js'

export interface FoldDeps {
  hot: HotState
  archive: Archive
  bus: Bus
  now: () => number
}

export interface FoldReport {
  changed: Bucket[]
  duplicates: number
  /** Buckets the hot state did not hold and that were loaded from the archive first. */
  loaded: number
}

/** How often a fold may find buckets missing in a row (another worker's Redis flush, a restart). */
const MAX_LOAD_ROUNDS = 5

/**
 * Folds one ingest batch: per ticker, one atomic fold into the hot state, loading from the
 * archive any bucket the hot state does not hold yet; then publishes every changed bucket.
 * Safe to run again for the same batch: dedupe makes a replay change nothing.
 */
export async function foldBatch (deps: FoldDeps, batch: IngestBatch): Promise<FoldReport> {
  // Tickers share no bucket, so their folds run concurrently: one round trip, not one per ticker.
  const reports = await Promise.all([...groupByTicker(batch.items)].map(async ([ticker, items]) => await foldTicker(deps, batch, ticker, items)))
  const changed = reports.flatMap((report) => report.changed)
  if (changed.length > 0) {
    await deps.bus.publish(changed.map((bucket) => ({ kind: 'change', bucket, acceptedAt: batch.acceptedAt })))
  }
  return {
    changed,
    duplicates: reports.reduce((sum, report) => sum + report.duplicates, 0),
    loaded: reports.reduce((sum, report) => sum + report.loaded, 0)
  }
}

/** One ticker's atomic fold, loading from the archive whatever the hot state lacks. */
async function foldTicker (deps: FoldDeps, batch: IngestBatch, ticker: string, items: ScoredItem[]): Promise<FoldReport> {
  let loaded = 0
  for (let round = 0; ; round++) {
    const now = deps.now()
    const options = batch.seq === undefined ? { now } : { now, seq: batch.seq }
    const outcome = await deps.hot.fold(ticker, items, options)
    if (outcome.kind === 'applied') return { changed: outcome.changed, duplicates: outcome.duplicates, loaded }
    if (round >= MAX_LOAD_ROUNDS) throw new Error(`buckets of ${ticker} stayed unloaded after ${round} loads`)
    loaded += outcome.refs.length
    const found = await deps.archive.get(outcome.refs, now)
    await deps.hot.seed(outcome.refs, found)
  }
}

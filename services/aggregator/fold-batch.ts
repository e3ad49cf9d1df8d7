import { faultPoint } from '../../shared/fault-points.js'
import type { Archive } from '../../shared/ports/archive.js'
import type { HotState, TermGrant } from '../../shared/ports/hot-state.js'
import type { IngestBatch } from '../../shared/ports/ingest-queue.js'
import type { Bucket, ScoredItem } from '../../shared/timeseries/bucket.js'
import { groupByTicker } from '../../shared/timeseries/keys.js'

export interface FoldDeps {
  hot: HotState
  archive: Archive
  now: () => number
}

export interface FoldReport {
  /** Buckets the batch changed, each published by its fold as a `change` event. */
  changed: Bucket[]
  duplicates: number
  /** Buckets the hot state did not hold and that were loaded from the archive first. */
  loaded: number
}

/**
 * How often a fold may find buckets missing or need a term in a row (a first fold after a
 * failover takes a term, then loads; another worker's Redis flush or a restart may repeat it).
 */
const MAX_ROUNDS = 8

/**
 * Folds one ingest batch: per ticker, one atomic fold into the hot state, loading from the
 * archive any bucket the hot state does not hold yet. Tickers fold independently, so a
 * ticker waiting for a slow archive load holds back no other ticker's live updates. Safe
 * to run again for the same batch: dedupe makes a replay change nothing.
 *
 * The hot state publishes each fold's changes within the fold itself (see
 * {@link HotState.fold}): nothing is left to publish here, so a worker that dies after a
 * fold loses no update, and a redelivered batch has nothing to send again.
 */
export async function foldBatch (deps: FoldDeps, batch: IngestBatch): Promise<FoldReport> {
  // Tickers share no bucket, so their folds run concurrently: one round trip, not one per ticker.
  const reports = await Promise.all([...groupByTicker(batch.items)].map(async ([ticker, items]) => {
    const report = await foldTicker(deps, batch, ticker, items)
    // A worker stopped right after a fold (committed and published): the fault tests' window.
    await faultPoint('fold.after')
    return report
  }))
  return {
    changed: reports.flatMap((report) => report.changed),
    duplicates: reports.reduce((sum, report) => sum + report.duplicates, 0),
    loaded: reports.reduce((sum, report) => sum + report.loaded, 0)
  }
}

/** One ticker's atomic fold, loading from the archive whatever the hot state lacks and a term when it needs one. */
async function foldTicker (deps: FoldDeps, batch: IngestBatch, ticker: string, items: ScoredItem[]): Promise<FoldReport> {
  let loaded = 0
  let term: TermGrant | undefined
  for (let round = 0; ; round++) {
    const now = deps.now()
    const options = {
      now,
      acceptedAt: batch.acceptedAt,
      ...(batch.mark === undefined ? {} : { mark: batch.mark }),
      ...(term === undefined ? {} : { term })
    }
    const outcome = await deps.hot.fold(ticker, items, options)
    if (outcome.kind === 'applied') return { changed: outcome.changed, duplicates: outcome.duplicates, loaded }
    if (round >= MAX_ROUNDS) throw new Error(`the fold of ${ticker} found buckets unloaded or its term refused ${round} times in a row`)
    if (outcome.kind === 'needs-term') {
      // A fresh term for each ticker that asks: one offered before may have been counted in already.
      term = { run: outcome.run, term: await deps.archive.nextTerm() }
      continue
    }
    loaded += outcome.refs.length
    const found = await deps.archive.get(outcome.refs, now)
    await deps.hot.seed(outcome.refs, found)
  }
}

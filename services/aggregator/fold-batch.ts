import { faultPoint } from '../../shared/fault-points.js'
import type { Archive, Bus, HotState, IngestBatch } from '../../shared/ports/index.js'
import { type Bucket, type BucketRef, bucketId, bucketRefsFor, groupByTicker, reloadedBucket, type ScoredItem } from '../../shared/timeseries/index.js'

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
  /** Buckets published again in their current state because the batch was redelivered. */
  republished: number
}

/** How often a fold may find buckets missing in a row (another worker's Redis flush, a restart). */
const MAX_LOAD_ROUNDS = 5

/**
 * Folds one ingest batch: per ticker, one atomic fold into the hot state, loading from the
 * archive any bucket the hot state does not hold yet; then publishes every changed bucket.
 * Safe to run again for the same batch: dedupe makes a replay change nothing.
 *
 * A first delivery publishes what changed. A redelivered batch may have been folded (wholly
 * or for some tickers) by an attempt that died before publishing, and its retry finds only
 * duplicates; so it publishes the current state of every bucket the batch touches, changed
 * or not. Receivers keep the highest `rev` of a bucket, so a repeated state is harmless.
 */
export async function foldBatch (deps: FoldDeps, batch: IngestBatch): Promise<FoldReport> {
  // Tickers share no bucket, so their folds run concurrently: one round trip, not one per ticker.
  const reports = await Promise.all([...groupByTicker(batch.items)].map(async ([ticker, items]) => await foldTicker(deps, batch, ticker, items)))
  const changed = reports.flatMap((report) => report.changed)
  const published = batch.redelivered ? await currentStates(deps, batch.items, changed) : changed
  await faultPoint('fold.before-publish')
  if (published.length > 0) {
    await deps.bus.publish(published.map((bucket) => ({ kind: 'change', bucket, acceptedAt: batch.acceptedAt })))
  }
  return {
    changed,
    duplicates: reports.reduce((sum, report) => sum + report.duplicates, 0),
    loaded: reports.reduce((sum, report) => sum + report.loaded, 0),
    republished: published.length - changed.length
  }
}

/** One ticker's atomic fold, loading from the archive whatever the hot state lacks. */
async function foldTicker (deps: FoldDeps, batch: IngestBatch, ticker: string, items: ScoredItem[]): Promise<Omit<FoldReport, 'republished'>> {
  let loaded = 0
  for (let round = 0; ; round++) {
    const now = deps.now()
    const options = batch.mark === undefined ? { now } : { now, mark: batch.mark }
    const outcome = await deps.hot.fold(ticker, items, options)
    if (outcome.kind === 'applied') return { changed: outcome.changed, duplicates: outcome.duplicates, loaded }
    if (round >= MAX_LOAD_ROUNDS) throw new Error(`buckets of ${ticker} stayed unloaded after ${round} loads`)
    loaded += outcome.refs.length
    const found = await deps.archive.get(outcome.refs, now)
    await deps.hot.seed(outcome.refs, found.map(reloadedBucket))
  }
}

/**
 * Every bucket the items fold into, in its current state: the buckets this fold changed as
 * it returned them, the rest read from the hot state (at least as new as any earlier fold).
 */
async function currentStates (deps: FoldDeps, items: readonly ScoredItem[], changed: readonly Bucket[]): Promise<Bucket[]> {
  const known = new Set(changed.map(bucketId))
  const others = new Map<string, BucketRef>()
  const now = deps.now()
  for (const item of items) {
    for (const ref of bucketRefsFor(item, now)) {
      const id = bucketId(ref)
      if (!known.has(id)) others.set(id, ref)
    }
  }
  return [...changed, ...await deps.hot.get([...others.values()])]
}

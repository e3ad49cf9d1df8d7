import type { Bucket, BucketRef, JournalMark, Resolution, ScoredItem } from '../timeseries/index.js'

export type FoldOutcome =
  /** The batch was folded: every bucket that changed, in its new state. */
  | { kind: 'applied', changed: Bucket[], duplicates: number }
  /**
   * Nothing was applied: these buckets are not loaded in the hot state. The caller reads
   * them from the archive, {@link HotState.seed}s them and folds again. This is what keeps
   * a hot state that restarted empty from overwriting the archive with smaller totals.
   */
  | { kind: 'needs-load', refs: BucketRef[] }

export interface FoldOptions {
  /** Clock for retention and `last_updated`, epoch ms. Adapters with a server clock may ignore it. */
  now: number
  /**
   * The batch's place in its journal, when the queue has one (see IngestBatch.mark): a
   * bucket that already holds this mark is left unchanged, so a replay counts nothing twice.
   */
  mark?: JournalMark
}

/**
 * Hot bucket state: the authoritative current value of recent buckets, folded atomically.
 *
 * Implementations: in-memory (embedded mode) and Redis (cluster mode, a Lua script). Both
 * apply the merge law of `shared/timeseries/bucket.ts` and are tested equal against it.
 */
export interface HotState {
  /**
   * Atomically folds items of one ticker into every retained bucket they belong to, at
   * all eight resolutions. Items whose `(ticker, id)` was seen within the dedupe window
   * are ignored (the first accepted copy counts). Each changed bucket gets `rev + 1` and
   * is marked dirty for the write-behind.
   */
  fold (ticker: string, items: ScoredItem[], options: FoldOptions): Promise<FoldOutcome>
  /**
   * Installs buckets read from the archive for `refs` that are still missing; a ref with
   * no bucket in `found` is marked as known-empty. Never overwrites a loaded bucket.
   */
  seed (refs: BucketRef[], found: Bucket[]): Promise<void>
  /** Loaded buckets of a series with `from <= start < to`, ascending. */
  range (ticker: string, resolution: Resolution, from: number, to: number): Promise<Bucket[]>
  /** The loaded buckets among `refs` (missing ones are left out). */
  get (refs: BucketRef[]): Promise<Bucket[]>
  /** Up to `limit` buckets changed since they were last written to the archive. */
  takeDirty (limit: number): Promise<Bucket[]>
  /**
   * Hands back buckets `takeDirty` returned that the caller will not write now, so they are
   * eligible again at once (an adapter that leases taken buckets would otherwise hold them
   * until the lease ends). They stay dirty.
   */
  release (taken: BucketRef[]): Promise<void>
  /** Clears the dirty mark of buckets written at these revs; later changes stay dirty. */
  markClean (written: Bucket[]): Promise<void>
  /** Marks buckets dirty again (the finalizer uses it to write final states). */
  markDirty (refs: BucketRef[]): Promise<void>
  /**
   * Item fingerprints the dedupe window holds now for these tickers, across every slice
   * (for the sizing gauge: bytes per fingerprint × this = the dedupe memory).
   */
  dedupeEntries (tickers: readonly string[], now: number): Promise<number>
  /** How many buckets wait for the write-behind. */
  dirtyCount (): Promise<number>
  ping (): Promise<void>
  close (): Promise<void>
}

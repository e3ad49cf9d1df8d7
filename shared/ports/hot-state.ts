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

/** Shortest time between two archive writes of one bucket, per resolution, in ms. */
export type FlushCadence = Readonly<Partial<Record<Resolution, number>>>

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
   * no bucket in `found` is marked as known-empty. Never overwrites a loaded bucket. The
   * caller passes them as `reloadedBucket` makes them, revs past the reload gap.
   */
  seed (refs: BucketRef[], found: Bucket[]): Promise<void>
  /** Loaded buckets of a series with `from <= start < to`, ascending. */
  range (ticker: string, resolution: Resolution, from: number, to: number): Promise<Bucket[]>
  /** The loaded buckets among `refs` (missing ones are left out). */
  get (refs: BucketRef[]): Promise<Bucket[]>
  /**
   * Up to `limit` buckets changed since they were last written to the archive, in their
   * current state. An adapter shared by several flushers leases what it hands out, so no
   * other flusher takes those buckets until the lease ends or the caller hands them back
   * ({@link HotState.markClean}, {@link HotState.release}); buckets parked by `release`
   * are not handed out before their time.
   *
   * With `cadenceMs`, a bucket written (marked clean) less than `cadenceMs[resolution]`
   * ago is not handed out until that much time has passed since — unless it has ended
   * since that write: a bucket that closed is handed out at once, so its final state is
   * written promptly. Resolutions without a cadence are handed out whenever dirty.
   */
  takeDirty (limit: number, cadenceMs?: FlushCadence): Promise<Bucket[]>
  /**
   * Hands back buckets `takeDirty` returned that the caller did not get into the archive.
   * They stay dirty and are handed out again after `retryAfterMs` (0, the default: at
   * once). The write-behind parks a bucket the archive refused this way, so it cannot
   * hold up the others. A bucket whose lease this caller no longer holds is left alone.
   */
  release (taken: BucketRef[], retryAfterMs?: number): Promise<void>
  /**
   * Records that the archive now holds these buckets at these revs, or newer ones (written
   * by this caller or, refused as stale, by another flusher first). A bucket whose hot rev
   * is not newer than the one given is clean and leaves the dirty set; one that changed
   * since stays dirty and, when this caller still holds its lease, is eligible at once.
   */
  markClean (done: Bucket[]): Promise<void>
  /** Marks buckets dirty again (the finalizer uses it to write final states). */
  markDirty (refs: BucketRef[]): Promise<void>
  /**
   * Item fingerprints the dedupe window holds now for these tickers, across every slice
   * (for the sizing gauge: bytes per fingerprint × this = the dedupe memory).
   */
  dedupeEntries (tickers: readonly string[], now: number): Promise<number>
  /** How many buckets wait for the write-behind. */
  dirtyCount (): Promise<number>
  /**
   * Moves the finalizer's mark — the end of the last window finalized — forward to `to`
   * (epoch ms), atomically for every process sharing this hot state, so each window is
   * finalized once however many workers run the finalizer. Resolves with the previous
   * mark (`null` when there was none) when this caller moved it, so it now owns the window
   * `(previous, to]`; `undefined` when the mark was already at or past `to`.
   */
  advanceFinalizedMark (to: number): Promise<number | null | undefined>
  ping (): Promise<void>
  close (): Promise<void>
}

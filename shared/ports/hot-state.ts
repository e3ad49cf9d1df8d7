import type { Bucket, JournalMark, ScoredItem } from '../timeseries/bucket.js'
import type { BucketRef } from '../timeseries/keys.js'
import type { Resolution } from '../timeseries/resolutions.js'

export type FoldOutcome =
  /** The batch was folded: every bucket that changed, in its new state. */
  | { kind: 'applied', changed: Bucket[], duplicates: number }
  /**
   * Nothing was applied: these buckets are not loaded in the hot state. The caller reads
   * them from the archive, {@link HotState.seed}s them and folds again. This is what keeps
   * a hot state that restarted empty from overwriting the archive with smaller totals.
   */
  | { kind: 'needs-load', refs: BucketRef[] }
  /**
   * Nothing was applied: the ticker's position does not belong to this run of the hot
   * state (it restarted, or a replica took over: writes may be lost or rolled back), or its
   * count is spent. The caller gets a new term for `run` from the archive
   * ({@link Archive.nextTerm}) and folds again offering it (see shared/timeseries/revision.ts).
   */
  | { kind: 'needs-term', run: string }

/** A term the archive allocated, offered for one run of a hot state. */
export interface TermGrant {
  run: string
  term: number
}

/** A window of bucket ends, `(from, to]`, one finalizer run owns. */
export interface FinalizedWindow {
  /** The previous mark; `null` when there was none. */
  from: number | null
  to: number
}

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
  /** A term for the run a `needs-term` outcome named; taken only by that run, and only when above the ticker's term. */
  term?: TermGrant
  /** When the batch was accepted (epoch ms): the change events the fold publishes carry it. */
  acceptedAt?: number
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
   * are ignored (the first accepted copy counts). A fold that changes anything counts one
   * change of the ticker; each changed bucket takes that position as its `rev` and is
   * marked dirty for the write-behind.
   *
   * The fold publishes each changed bucket as a `change` event on its series channel in
   * the same atomic step (an adapter built without a bus publishes nothing), so every
   * series channel carries its buckets' states in position order, and a fold that is
   * committed is published: no caller can die in between.
   */
  fold (ticker: string, items: ScoredItem[], options: FoldOptions): Promise<FoldOutcome>
  /**
   * Installs buckets read from the archive (`found`, as stored) for `refs` that are still
   * missing; a ref with no bucket in `found` is marked as known-empty. A bucket held in a
   * state of an earlier term keeps the newer of that state and the archive's. Installed
   * and reconciled buckets take the ticker's current position as their rev; a bucket of
   * the current term is never overwritten.
   */
  seed (refs: BucketRef[], found: Bucket[]): Promise<void>
  /**
   * Loaded buckets of a series with `from <= start < to`, ascending, read atomically: no
   * fold lands in the middle of the read, so every state of the series up to the newest
   * rev returned is in the answer (or was overwritten by a newer one that is).
   */
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
  /**
   * Marks buckets dirty again so their final state is written (the finalizer). A bucket
   * last written at or after its end is left alone: the archive holds it final already.
   */
  markDirty (refs: BucketRef[]): Promise<void>
  /**
   * Buckets of these tickers whose end is in `(from, to]` and that a fold may have touched
   * (a superset of the loaded ones; read them with {@link HotState.get}). The finalizer
   * asks once per window, so its cost follows the buckets that were open, not the number
   * of tickers. Windows ending at or before `from` are taken as finalized: an adapter may
   * forget them.
   */
  endedBuckets (tickers: readonly string[], from: number, to: number): Promise<BucketRef[]>
  /**
   * Item fingerprints the dedupe window holds now for these tickers, across every slice
   * (for the sizing gauge: bytes per fingerprint × this = the dedupe memory).
   */
  dedupeEntries (tickers: readonly string[], now: number): Promise<number>
  /** How many buckets wait for the write-behind. */
  dirtyCount (): Promise<number>
  /**
   * Moves the finalizer's mark — the end of the last window finalized — forward to `to`
   * (epoch ms, a multiple of `stepMs`), atomically for every process sharing this hot
   * state, so each window is finalized once however many workers run the finalizer. An
   * adapter with a clock of its own (Redis) caps `to` at its own time rounded down to
   * `stepMs`, so a process whose clock runs ahead cannot finalize buckets still open.
   * Resolves with the window this caller now owns, `(from, to]` (`from` is `null` when
   * there was no mark), or `undefined` when the mark was already at or past `to`.
   */
  advanceFinalizedMark (to: number, stepMs: number): Promise<FinalizedWindow | undefined>
  ping (): Promise<void>
  close (): Promise<void>
}

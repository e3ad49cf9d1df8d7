import { randomUUID } from 'node:crypto'
import type { BucketEvent } from '../../ports/bus.js'
import type { FinalizedWindow, FlushCadence, FoldOptions, FoldOutcome, HotState, TermGrant } from '../../ports/hot-state.js'
import { type Bucket, type ScoredItem, applyToBucket, foldAggregate, groupByBucket, holdsMark } from '../../timeseries/bucket.js'
import { dedupeFingerprint, dedupeSliceExpiresAt, dedupeSlices } from '../../timeseries/dedupe.js'
import { MAX_FUTURE_MS } from '../../timeseries/item.js'
import { type BucketRef, bucketId, seriesKey, endedBetween } from '../../timeseries/keys.js'
import { type Resolution, bucketEnd, isRetained } from '../../timeseries/resolutions.js'
import { isNewerState, position, TERM_SPAN } from '../../timeseries/revision.js'
import type { MemoryBus } from './memory-bus.js'

/** An item's fingerprint as a compact one-byte string (8 characters). */
function fingerprint (ticker: string, id: string): string {
  return dedupeFingerprint(ticker, id).toString('latin1')
}

/** Fingerprints one fold recorded for a journal batch, in the dedupe slice they went to. */
export interface SeenEntry {
  seq: number
  slice: number
  fingerprints: string[]
}

/**
 * Hot state in process memory, for embedded mode: one process owns it, so a fold is
 * atomic by running synchronously. Buckets past retention and dedupe keys past the
 * window are swept as time passes. With a bus, a fold publishes its changes on it within
 * the same synchronous step, so series channels carry states in position order.
 */
export class MemoryHotState implements HotState {
  readonly #series = new Map<string, Map<number, Bucket>>()
  /** This state's run: a memory state lives and dies with its process. */
  readonly #run = randomUUID()
  #term: number | undefined
  /** Changes counted per ticker in the current term. */
  readonly #counts = new Map<string, number>()
  readonly #knownEmpty = new Set<string>()
  readonly #dirty = new Map<string, Bucket>()
  /** Dirty buckets handed back with a delay: not taken before this time (epoch ms). */
  readonly #parkedUntil = new Map<string, number>()
  /** When each recently written bucket was marked clean (the flush cadence). */
  readonly #writtenAt = new Map<string, number>()
  #finalizedTo: number | undefined
  /** Item fingerprints (as 8-character latin1 strings) per dedupe slice; see shared/timeseries/dedupe.ts. */
  readonly #seen = new Map<number, Set<string>>()
  readonly #dedupeWindowMs: number
  /**
   * Per dirty bucket, the lowest journal sequence whose effect on it the archive may not
   * hold yet (a lower bound): what keeps the journal's checkpoint back.
   */
  readonly #unwrittenFrom = new Map<string, number>()
  /** Fingerprints recorded by folds of journal batches, in fold order, not yet persisted. */
  #unsavedSeen: SeenEntry[] = []
  /**
   * Buckets starting at or after this held nothing before this hot state existed: an item
   * accepted earlier was at most `MAX_FUTURE_MS` ahead of the clock. Such a bucket that is
   * not here is empty, with no archive read — the common case of a new live bucket.
   */
  readonly #horizon: number
  /** Clock of the flush bookkeeping: leases, parking, write times (Redis uses its server clock). */
  readonly #now: () => number
  readonly #bus: MemoryBus | undefined

  /** `bus`: where folds publish their changes (embedded mode's bus); unset, they publish nothing. */
  constructor (options: { dedupeWindowMs: number, createdAt?: number, now?: () => number, bus?: MemoryBus }) {
    this.#dedupeWindowMs = options.dedupeWindowMs
    this.#bus = options.bus
    this.#now = options.now ?? Date.now
    this.#horizon = (options.createdAt ?? this.#now()) + MAX_FUTURE_MS
  }

  async fold (ticker: string, items: ScoredItem[], options: FoldOptions): Promise<FoldOutcome> {
    const { now, mark } = options
    this.#sweepSeen(now)
    const slices = dedupeSlices(now, this.#dedupeWindowMs)
    const fresh = this.#unseen(ticker, items, slices.checked)
    if (fresh.length === 0) return { kind: 'applied', changed: [], duplicates: items.length }
    const term = this.#termFor(ticker, options.term)
    if (term === undefined) return { kind: 'needs-term', run: this.#run }
    const count = (this.#counts.get(ticker) ?? 0) + 1
    const rev = position(term, count)
    const groups = groupByBucket(fresh, now)
    const missing: BucketRef[] = []
    for (const { ref } of groups.values()) {
      if (ref.start < this.#horizon && !this.#isLoaded(ref)) missing.push(ref)
    }
    if (missing.length > 0) return { kind: 'needs-load', refs: missing }

    let current = this.#seen.get(slices.current)
    if (current === undefined) {
      current = new Set()
      this.#seen.set(slices.current, current)
    }
    const fingerprints = fresh.map((item) => fingerprint(ticker, item.id))
    for (const key of fingerprints) current.add(key)
    if (mark !== undefined && fingerprints.length > 0) this.#unsavedSeen.push({ seq: mark.seq, slice: slices.current, fingerprints })
    const changed: Bucket[] = []
    for (const { ref, items: bucketItems } of groups.values()) {
      const existing = this.#lookup(ref)
      if (holdsMark(existing, mark)) continue
      const delta = foldAggregate(bucketItems)
      if (delta === undefined) continue
      const bucket = applyToBucket(ref, existing, delta, { now, rev, mark })
      this.#store(bucket)
      const id = bucketId(ref)
      this.#dirty.set(id, bucket)
      if (mark !== undefined && !this.#unwrittenFrom.has(id)) this.#unwrittenFrom.set(id, mark.seq)
      changed.push(bucket)
    }
    if (changed.length > 0) {
      this.#counts.set(ticker, count)
      const acceptedAt = options.acceptedAt === undefined ? {} : { acceptedAt: options.acceptedAt }
      // As lua/fold.lua does: the last state of each series in this fold closes its rev.
      const lastOfSeries = new Map(changed.map((bucket, i) => [bucket.resolution, i]))
      this.#bus?.deliver(changed.map((bucket, i): BucketEvent => ({ kind: 'change', bucket, ...acceptedAt, ...(lastOfSeries.get(bucket.resolution) === i ? { lastAtRev: true } : {}) })))
    }
    return { kind: 'applied', changed, duplicates: items.length - fresh.length }
  }

  /**
   * The term the ticker counts in, taking an offered one when this state has none yet or
   * the ticker's count is spent; `undefined` when a new term is needed first. A memory state
   * lives as long as its process, so one term serves every ticker; it is never rolled back,
   * so there is nothing to reconcile.
   */
  #termFor (ticker: string, offered: TermGrant | undefined): number | undefined {
    if (this.#term !== undefined && (this.#counts.get(ticker) ?? 0) < TERM_SPAN - 1) return this.#term
    if (offered === undefined || offered.run !== this.#run || offered.term <= (this.#term ?? -1)) return undefined
    this.#term = offered.term
    this.#counts.clear()
    return this.#term
  }

  /** Installed buckets take the ticker's current position (shared/timeseries/revision.ts), when it has one. */
  async seed (refs: BucketRef[], found: Bucket[]): Promise<void> {
    const byId = new Map(found.map((bucket) => [bucketId(bucket), bucket]))
    for (const ref of refs) {
      if (this.#isLoaded(ref)) continue
      const bucket = byId.get(bucketId(ref))
      if (bucket === undefined) this.#knownEmpty.add(bucketId(ref))
      else this.#store(this.#term === undefined ? bucket : { ...bucket, rev: position(this.#term, this.#counts.get(ref.ticker) ?? 0) })
    }
  }

  async range (ticker: string, resolution: Resolution, from: number, to: number): Promise<Bucket[]> {
    const series = this.#series.get(seriesKey(ticker, resolution))
    if (series === undefined) return []
    const result: Bucket[] = []
    for (const bucket of series.values()) {
      if (bucket.start >= from && bucket.start < to) result.push(bucket)
    }
    return result.sort((a, b) => a.start - b.start)
  }

  async get (refs: BucketRef[]): Promise<Bucket[]> {
    const result: Bucket[] = []
    for (const ref of refs) {
      const bucket = this.#lookup(ref)
      if (bucket !== undefined) result.push(bucket)
    }
    return result
  }

  async takeDirty (limit: number, cadenceMs?: FlushCadence): Promise<Bucket[]> {
    const result: Bucket[] = []
    const now = this.#now()
    for (const [id, bucket] of this.#dirty) {
      if (result.length >= limit) break
      const parkedUntil = this.#parkedUntil.get(id)
      if (parkedUntil !== undefined) {
        if (parkedUntil > now) continue
        this.#parkedUntil.delete(id)
      }
      if (!this.#due(id, bucket, cadenceMs, now)) continue
      result.push(bucket)
    }
    return result
  }

  /** The rule of {@link HotState.takeDirty}'s cadence, as lua/take-dirty.lua applies it. */
  #due (id: string, bucket: Bucket, cadenceMs: FlushCadence | undefined, now: number): boolean {
    const every = cadenceMs?.[bucket.resolution]
    const writtenAt = this.#writtenAt.get(id)
    if (every === undefined || writtenAt === undefined) return true
    const end = bucketEnd(bucket.start, bucket.resolution)
    if (end <= now && writtenAt < end) return true
    return writtenAt + every <= now
  }

  /** Taking does not lease here: only a delay has anything to do. */
  async release (taken: BucketRef[], retryAfterMs = 0): Promise<void> {
    for (const ref of taken) {
      const id = bucketId(ref)
      if (retryAfterMs > 0 && this.#dirty.has(id)) this.#parkedUntil.set(id, this.#now() + retryAfterMs)
      else this.#parkedUntil.delete(id)
    }
  }

  async markClean (done: Bucket[]): Promise<void> {
    const now = this.#now()
    for (const bucket of done) {
      const id = bucketId(bucket)
      this.#writtenAt.set(id, now)
      const dirty = this.#dirty.get(id)
      if (dirty !== undefined && !isNewerState(dirty, bucket)) {
        this.#dirty.delete(id)
        this.#parkedUntil.delete(id)
        this.#unwrittenFrom.delete(id)
      } else if (dirty !== undefined && bucket.seq !== undefined && bucket.epoch === dirty.epoch) {
        // Changed again since this state was taken: batches are folded in sequence order and
        // each at most once per bucket, so every later change comes from a later batch.
        const from = this.#unwrittenFrom.get(id)
        if (from !== undefined) this.#unwrittenFrom.set(id, Math.max(from, bucket.seq + 1))
      }
    }
  }

  async markDirty (refs: BucketRef[]): Promise<void> {
    for (const ref of refs) {
      const id = bucketId(ref)
      const bucket = this.#lookup(ref)
      const writtenAt = this.#writtenAt.get(id)
      if (bucket === undefined || (writtenAt !== undefined && writtenAt >= bucketEnd(ref.start, ref.resolution))) continue
      this.#dirty.set(id, bucket)
    }
  }

  async endedBuckets (tickers: readonly string[], from: number, to: number): Promise<BucketRef[]> {
    return endedBetween(tickers, from, to).filter((ref) => this.#lookup(ref) !== undefined)
  }

  /** Every ticker's fingerprints (one process holds them all). */
  async dedupeEntries (_tickers: readonly string[], now: number): Promise<number> {
    this.#sweepSeen(now)
    let entries = 0
    for (const slice of this.#seen.values()) entries += slice.size
    return entries
  }

  /**
   * The highest journal sequence up to which every batch's effect is in the archive, given
   * that batches up to `foldedSeq` (and no later one) have finished folding.
   */
  durableThrough (foldedSeq: number): number {
    let through = foldedSeq
    for (const from of this.#unwrittenFrom.values()) through = Math.min(through, from - 1)
    return through
  }

  /** The fingerprints recorded by journal batches up to `seq` and not yet persisted. */
  unsavedSeen (seq: number): SeenEntry[] {
    return this.#unsavedSeen.filter((entry) => entry.seq <= seq)
  }

  /** Forgets the fingerprints of batches up to `seq` as persisted. */
  savedSeen (seq: number): void {
    this.#unsavedSeen = this.#unsavedSeen.filter((entry) => entry.seq > seq)
  }

  /** Restores persisted fingerprints of a dedupe slice (at start, before any fold). */
  restoreSeen (slice: number, fingerprints: Iterable<string>): void {
    let set = this.#seen.get(slice)
    if (set === undefined) {
      set = new Set()
      this.#seen.set(slice, set)
    }
    for (const key of fingerprints) set.add(key)
  }

  async dirtyCount (): Promise<number> {
    return this.#dirty.size
  }

  /** One process, one clock: `to` is taken as given. */
  async advanceFinalizedMark (to: number): Promise<FinalizedWindow | undefined> {
    const previous = this.#finalizedTo
    if (previous !== undefined && previous >= to) return undefined
    this.#finalizedTo = to
    return { from: previous ?? null, to }
  }

  /** Drops buckets past their retention (dirty ones stay until written). */
  sweep (now: number): void {
    for (const series of this.#series.values()) {
      for (const [start, bucket] of series) {
        if (!isRetained(start, bucket.resolution, now) && !this.#dirty.has(bucketId(bucket))) series.delete(start)
      }
    }
    for (const id of this.#knownEmpty) {
      const [key = '', start = '0'] = id.split('@')
      const resolution = key.slice(key.indexOf('#') + 1) as Resolution
      if (!isRetained(Number(start), resolution, now)) this.#knownEmpty.delete(id)
    }
    this.#sweepSeen(now)
    // Write times matter only within the longest cadence, far less than an hour.
    for (const [id, at] of this.#writtenAt) {
      if (at < now - 3_600_000) this.#writtenAt.delete(id)
    }
  }

  async ping (): Promise<void> {}

  async close (): Promise<void> {}

  #unseen (ticker: string, items: ScoredItem[], checked: readonly number[]): ScoredItem[] {
    const slices = checked.flatMap((slice) => this.#seen.get(slice) ?? [])
    const fresh: ScoredItem[] = []
    const inBatch = new Set<string>()
    for (const item of items) {
      const key = fingerprint(ticker, item.id)
      if (inBatch.has(key) || slices.some((slice) => slice.has(key))) continue
      inBatch.add(key)
      fresh.push(item)
    }
    return fresh
  }

  /** Drops slices whose every fingerprint is past the window. */
  #sweepSeen (now: number): void {
    for (const slice of this.#seen.keys()) {
      if (dedupeSliceExpiresAt(slice, this.#dedupeWindowMs) <= now) this.#seen.delete(slice)
    }
  }

  #isLoaded (ref: BucketRef): boolean {
    return this.#lookup(ref) !== undefined || this.#knownEmpty.has(bucketId(ref))
  }

  #lookup (ref: BucketRef): Bucket | undefined {
    return this.#series.get(seriesKey(ref.ticker, ref.resolution))?.get(ref.start)
  }

  #store (bucket: Bucket): void {
    const key = seriesKey(bucket.ticker, bucket.resolution)
    let series = this.#series.get(key)
    if (series === undefined) {
      series = new Map()
      this.#series.set(key, series)
    }
    series.set(bucket.start, bucket)
    this.#knownEmpty.delete(bucketId(bucket))
  }
}

import type { FlushCadence, FoldOptions, FoldOutcome, HotState } from '../../ports/index.js'
import {
  type Bucket, type BucketRef, type Resolution, type ScoredItem,
  applyToBucket, bucketEnd, bucketId, dedupeFingerprint, dedupeSliceExpiresAt, dedupeSlices, foldAggregate, groupByBucket,
  holdsMark, isRetained, MAX_FUTURE_MS, seriesKey
} from '../../timeseries/index.js'

/** An item's fingerprint as a compact one-byte string (8 characters). */
function fingerprint (ticker: string, id: string): string {
  return dedupeFingerprint(ticker, id).toString('latin1')
}

/**
 * Hot state in process memory, for embedded mode: one process owns it, so a fold is
 * atomic by running synchronously. Buckets past retention and dedupe keys past the
 * window are swept as time passes.
 */
export class MemoryHotState implements HotState {
  readonly #series = new Map<string, Map<number, Bucket>>()
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
   * Buckets starting at or after this held nothing before this hot state existed: an item
   * accepted earlier was at most `MAX_FUTURE_MS` ahead of the clock. Such a bucket that is
   * not here is empty, with no archive read — the common case of a new live bucket.
   */
  readonly #horizon: number

  constructor (options: { dedupeWindowMs: number, createdAt?: number }) {
    this.#dedupeWindowMs = options.dedupeWindowMs
    this.#horizon = (options.createdAt ?? Date.now()) + MAX_FUTURE_MS
  }

  async fold (ticker: string, items: ScoredItem[], options: FoldOptions): Promise<FoldOutcome> {
    const { now, mark } = options
    this.#sweepSeen(now)
    const slices = dedupeSlices(now, this.#dedupeWindowMs)
    const fresh = this.#unseen(ticker, items, slices.checked)
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
    for (const item of fresh) current.add(fingerprint(ticker, item.id))
    const changed: Bucket[] = []
    for (const { ref, items: bucketItems } of groups.values()) {
      const existing = this.#lookup(ref)
      if (holdsMark(existing, mark)) continue
      const delta = foldAggregate(bucketItems)
      if (delta === undefined) continue
      const bucket = applyToBucket(ref, existing, delta, now, mark)
      this.#store(bucket)
      this.#dirty.set(bucketId(ref), bucket)
      changed.push(bucket)
    }
    return { kind: 'applied', changed, duplicates: items.length - fresh.length }
  }

  async seed (refs: BucketRef[], found: Bucket[]): Promise<void> {
    const byId = new Map(found.map((bucket) => [bucketId(bucket), bucket]))
    for (const ref of refs) {
      if (this.#isLoaded(ref)) continue
      const bucket = byId.get(bucketId(ref))
      if (bucket === undefined) this.#knownEmpty.add(bucketId(ref))
      else this.#store(bucket)
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
    const now = Date.now()
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
      if (retryAfterMs > 0 && this.#dirty.has(id)) this.#parkedUntil.set(id, Date.now() + retryAfterMs)
      else this.#parkedUntil.delete(id)
    }
  }

  async markClean (done: Bucket[]): Promise<void> {
    const now = Date.now()
    for (const bucket of done) {
      const id = bucketId(bucket)
      this.#writtenAt.set(id, now)
      const dirty = this.#dirty.get(id)
      if (dirty !== undefined && dirty.rev <= bucket.rev) {
        this.#dirty.delete(id)
        this.#parkedUntil.delete(id)
      }
    }
  }

  async markDirty (refs: BucketRef[]): Promise<void> {
    for (const ref of refs) {
      const bucket = this.#lookup(ref)
      if (bucket !== undefined) this.#dirty.set(bucketId(ref), bucket)
    }
  }

  /** Every ticker's fingerprints (one process holds them all). */
  async dedupeEntries (_tickers: readonly string[], now: number): Promise<number> {
    this.#sweepSeen(now)
    let entries = 0
    for (const slice of this.#seen.values()) entries += slice.size
    return entries
  }

  async dirtyCount (): Promise<number> {
    return this.#dirty.size
  }

  async advanceFinalizedMark (to: number): Promise<number | null | undefined> {
    const previous = this.#finalizedTo
    if (previous !== undefined && previous >= to) return undefined
    this.#finalizedTo = to
    return previous ?? null
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

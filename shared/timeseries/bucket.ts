import { type BucketRef, bucketId } from './keys.js'
import { type Resolution, bucketEnd, bucketStart, isRetained, progressPct, RESOLUTIONS, toIsoSecond } from './resolutions.js'

export type Label = 'positive' | 'neutral' | 'negative'

export interface LabelCounts {
  positive: number
  neutral: number
  negative: number
}

/** An accepted item as the fold sees it: validated, scored and labelled. */
export interface ScoredItem {
  id: string
  ticker: string
  /** Event time, epoch milliseconds. */
  ts: number
  score: number
  label: Label
  source: string
}

/** Where an item stands in a bucket's order: by event time, then by id. */
export interface OrderKey {
  ts: number
  id: string
}

/**
 * What a bucket knows about its items. `first` and `last` remember which item set `open`
 * and `close`, which is what makes the merge independent of arrival order.
 */
export interface Aggregate {
  open: number
  high: number
  low: number
  close: number
  count: number
  sum: number
  label_counts: LabelCounts
  /** Sorted, unique; at most {@link MAX_SOURCES}. */
  sources: string[]
  /** Present (true) when sources past {@link MAX_SOURCES} were left out of `sources`. */
  sources_truncated?: true
  first: OrderKey
  last: OrderKey
}

/** A stored bucket: identity, aggregate, and its change counter. */
export interface Bucket extends BucketRef, Aggregate {
  /** Increases by at least 1 on every change. */
  rev: number
  /** Time of the last change, epoch milliseconds (monotonic per bucket). */
  last_updated: number
  /** Highest sequence folded in from the journal named by {@link Bucket.epoch}. */
  seq?: number
  /** Epoch of the journal whose batches `seq` counts (see {@link JournalMark}). */
  epoch?: string
}

/**
 * Where a batch stands in the journal that numbered it. Sequences only compare within one
 * journal: `epoch` is a random id created with the journal, so a bucket written through
 * another journal (an archive that outlived its data directory, a second instance on the
 * same table) never makes a batch of this one look already folded.
 */
export interface JournalMark {
  epoch: string
  seq: number
}

/** Whether `bucket` already holds the batch at `mark` (a replay must not fold it again). */
export function holdsMark (bucket: Pick<Bucket, 'seq' | 'epoch'> | undefined, mark: JournalMark | undefined): boolean {
  return mark !== undefined && bucket?.epoch === mark.epoch && bucket.seq !== undefined && bucket.seq >= mark.seq
}

/** A bucket as clients see it (SPEC §2). Partial buckets carry progress fields. */
export interface WireBucket {
  ticker: string
  resolution: Resolution
  timestamp: string
  open: number
  high: number
  low: number
  close: number
  count: number
  sum: number
  avg: number
  label_counts: LabelCounts
  sources: string[]
  /** True when sources past the first 64 were left out of `sources`. */
  sources_truncated: boolean
  last_updated: string
  is_partial: boolean
  rev: number
  progress_pct?: number
  next_update_at?: string
}

/**
 * Orders ids by Unicode code point (the same as UTF-8 byte order), so every adapter —
 * including Lua in Redis, which compares bytes — sorts ties identically.
 */
export function compareIds (a: string, b: string): number {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    const xSurrogate = x >= 0xd800 && x <= 0xdfff
    const ySurrogate = y >= 0xd800 && y <= 0xdfff
    // A surrogate starts a code point above U+FFFF: it sorts after every BMP character.
    if (xSurrogate !== ySurrogate) return xSurrogate ? 1 : -1
    return x < y ? -1 : 1
  }
  return a.length < b.length ? -1 : 1
}

export function compareOrder (a: OrderKey, b: OrderKey): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1
  return compareIds(a.id, b.id)
}

/** Label derived from a score when the producer gave none. */
export function labelFor (score: number): Label {
  if (score >= 0.05) return 'positive'
  if (score <= -0.05) return 'negative'
  return 'neutral'
}

/** The aggregate of a single item. */
export function aggregateOf (item: ScoredItem): Aggregate {
  const key = { ts: item.ts, id: item.id }
  return {
    open: item.score,
    high: item.score,
    low: item.score,
    close: item.score,
    count: 1,
    sum: item.score,
    label_counts: {
      positive: item.label === 'positive' ? 1 : 0,
      neutral: item.label === 'neutral' ? 1 : 0,
      negative: item.label === 'negative' ? 1 : 0
    },
    sources: [item.source],
    first: key,
    last: key
  }
}

/**
 * Most distinct sources a bucket keeps: the first `MAX_SOURCES` in sorted order. A bucket
 * must stay well under DynamoDB's 400 KB item limit however many sources write about a
 * ticker (64 sources of at most 32 characters are about 2 KB). Keeping the smallest K of
 * a union is itself associative and commutative, so the merge law still holds; a bucket
 * that left sources out says so (`sources_truncated`: either side had left some out, or
 * their union is longer than the cut — together, whether the union of all its items'
 * sources is). The Redis fold receives this same constant as an argument.
 */
export const MAX_SOURCES = 64

function unionSorted (a: readonly string[], b: readonly string[]): { sources: string[], truncated: boolean } {
  if (b.length === 1 && a.includes(b[0] as string)) return { sources: a.slice(), truncated: false }
  const union = [...new Set([...a, ...b])].sort()
  return { sources: union.slice(0, MAX_SOURCES), truncated: union.length > MAX_SOURCES }
}

/**
 * The merge law: combines two aggregates of the same window. Associative and
 * commutative, so any split or permutation of the same items gives the same aggregate.
 */
export function mergeAggregates (a: Aggregate, b: Aggregate): Aggregate {
  const aFirst = compareOrder(a.first, b.first) <= 0
  const aLast = compareOrder(a.last, b.last) >= 0
  const sources = unionSorted(a.sources, b.sources)
  const merged: Aggregate = {
    open: aFirst ? a.open : b.open,
    first: aFirst ? a.first : b.first,
    close: aLast ? a.close : b.close,
    last: aLast ? a.last : b.last,
    high: Math.max(a.high, b.high),
    low: Math.min(a.low, b.low),
    count: a.count + b.count,
    sum: a.sum + b.sum,
    label_counts: {
      positive: a.label_counts.positive + b.label_counts.positive,
      neutral: a.label_counts.neutral + b.label_counts.neutral,
      negative: a.label_counts.negative + b.label_counts.negative
    },
    sources: sources.sources
  }
  if (a.sources_truncated === true || b.sources_truncated === true || sources.truncated) merged.sources_truncated = true
  return merged
}

/** Folds items (already deduplicated) into an aggregate; `undefined` for none. */
export function foldAggregate (items: readonly ScoredItem[], into?: Aggregate): Aggregate | undefined {
  let acc = into
  for (const item of items) {
    const single = aggregateOf(item)
    acc = acc === undefined ? single : mergeAggregates(acc, single)
  }
  return acc
}

/**
 * Applies an aggregate of new items to a stored bucket (or creates it): one change, so the
 * bucket takes `rev`, the ticker's new position (shared/timeseries/revision.ts), and
 * `last_updated` moves to `now` (never backwards).
 */
export function applyToBucket (ref: BucketRef, existing: Bucket | undefined, delta: Aggregate, change: { now: number, rev: number, mark?: JournalMark | undefined }): Bucket {
  const { now, rev, mark } = change
  const merged = existing === undefined ? delta : mergeAggregates(existing, delta)
  const bucket: Bucket = {
    ticker: ref.ticker,
    resolution: ref.resolution,
    start: ref.start,
    ...merged,
    rev,
    last_updated: Math.max(now, existing?.last_updated ?? 0)
  }
  // A mark of another journal replaces the old one: only this journal's replays compare to it.
  if (mark !== undefined) {
    bucket.epoch = mark.epoch
    bucket.seq = existing?.epoch === mark.epoch ? Math.max(mark.seq, existing.seq ?? -1) : mark.seq
  } else if (existing?.seq !== undefined) {
    bucket.seq = existing.seq
    if (existing.epoch !== undefined) bucket.epoch = existing.epoch
  }
  return bucket
}

/** Groups the new items of a batch by the buckets they fold into at `now`. */
export function groupByBucket (items: readonly ScoredItem[], now: number): Map<string, { ref: BucketRef, items: ScoredItem[] }> {
  const groups = new Map<string, { ref: BucketRef, items: ScoredItem[] }>()
  for (const item of items) {
    for (const ref of bucketRefsFor(item, now)) {
      const key = bucketId(ref)
      const group = groups.get(key)
      if (group === undefined) groups.set(key, { ref, items: [item] })
      else group.items.push(item)
    }
  }
  return groups
}

/** The buckets an item belongs to at `now`: one per resolution still retained. */
export function bucketRefsFor (item: Pick<ScoredItem, 'ticker' | 'ts'>, now: number): BucketRef[] {
  const refs: BucketRef[] = []
  for (const resolution of RESOLUTIONS) {
    const start = bucketStart(item.ts, resolution)
    if (isRetained(start, resolution, now)) refs.push({ ticker: item.ticker, resolution, start })
  }
  return refs
}

/** True while `now` is before the bucket's end. */
export function isPartial (ref: BucketRef, now: number): boolean {
  return now < bucketEnd(ref.start, ref.resolution)
}

/** The client-facing view of a bucket; partial fields are derived from `now`. */
export function toWireBucket (bucket: Bucket, now: number): WireBucket {
  const partial = isPartial(bucket, now)
  const wire: WireBucket = {
    ticker: bucket.ticker,
    resolution: bucket.resolution,
    timestamp: toIsoSecond(bucket.start),
    open: bucket.open,
    high: bucket.high,
    low: bucket.low,
    close: bucket.close,
    count: bucket.count,
    sum: bucket.sum,
    avg: bucket.sum / bucket.count,
    label_counts: { ...bucket.label_counts },
    sources: bucket.sources.slice(),
    sources_truncated: bucket.sources_truncated === true,
    last_updated: toIsoSecond(bucket.last_updated),
    is_partial: partial,
    rev: bucket.rev
  }
  if (partial) {
    wire.progress_pct = progressPct(bucket.start, bucket.resolution, now)
    wire.next_update_at = toIsoSecond(bucketEnd(bucket.start, bucket.resolution))
  }
  return wire
}

import { faultSkew } from '../../fault-points.js'
import { type Bucket, type ScoredItem, MAX_SOURCES, foldAggregate, groupByBucket } from '../../timeseries/bucket.js'
import { dedupeFingerprint, dedupeSlices } from '../../timeseries/dedupe.js'
import { type BucketRef } from '../../timeseries/keys.js'
import type { TermGrant } from '../../ports/hot-state.js'
import { type Resolution, DURATION_MS, RESOLUTIONS, RETENTION_MS, bucketEnd, retentionScale } from '../../timeseries/resolutions.js'
import { BUCKET_FIELDS, decodeBucket, encodeAggregate, encodeBucket, numberText } from './bucket-codec.js'
import { type RedisKeys, dirtyMember } from './keys.js'

/** How long keys outlive their bucket's retention in production (covers items up to 5 minutes early and lagging clocks). */
const PRODUCTION_EXPIRY_GRACE_MS = 60 * 60_000
/** The least grace a test retention scale leaves: items still come up to 5 minutes early. */
const SCALED_EXPIRY_GRACE_FLOOR_MS = 5 * 60_000

/**
 * How long keys outlive their bucket's retention: 60 minutes in production; under a test
 * retention scale the grace shrinks with the retention, to no less than 5 minutes, so the
 * soak's key count levels within its run instead of after an hour.
 */
export function expiryGraceMs (): number {
  return Math.max(SCALED_EXPIRY_GRACE_FLOOR_MS, PRODUCTION_EXPIRY_GRACE_MS / retentionScale())
}

/**
 * Milliseconds from `now` until a bucket's keys may expire: its end + retention + grace,
 * and never less than the grace, so a caller whose clock lags keeps what it just wrote.
 */
export function bucketTtlMs (ref: BucketRef, now: number): number {
  return Math.max(expiryGraceMs(), bucketEnd(ref.start, ref.resolution) + RETENTION_MS[ref.resolution] + expiryGraceMs() - now)
}

/** A series index outlives every bucket written into it now. */
function indexTtlMs (resolution: Resolution): number {
  return DURATION_MS[resolution] + RETENTION_MS[resolution] + expiryGraceMs()
}

/**
 * The longest any key of a ticker lives after its last write: the longest series index
 * life. A ticker not written for this long has no key left.
 */
export function longestKeyLifeMs (): number {
  return Math.max(...RESOLUTIONS.map(indexTtlMs))
}

/** Starts below this have expired bucket keys at `now`, so the index can forget them. */
function indexTrimBefore (resolution: Resolution, now: number): number {
  return now - DURATION_MS[resolution] - RETENTION_MS[resolution] - expiryGraceMs()
}

/** Keys and arguments of one script call, plus the refs in the order the script numbers them. */
export interface ScriptCall {
  keys: string[]
  /** Text, and binary item fingerprints (fold). */
  args: Array<string | Buffer>
  refs: BucketRef[]
}

function indexSlots (keys: RedisKeys, refs: readonly BucketRef[]): { indexKeys: string[], resolutions: Resolution[], pos: number[] } {
  const resolutions: Resolution[] = []
  const pos = refs.map((ref) => {
    let at = resolutions.indexOf(ref.resolution)
    if (at < 0) at = resolutions.push(ref.resolution) - 1
    return at + 1
  })
  const ticker = refs[0]?.ticker ?? ''
  return { indexKeys: resolutions.map((r) => keys.index(ticker, r)), resolutions, pos }
}

/** How lua/fold.lua publishes the buckets it changed. */
export interface FoldPublication {
  /** `SPUBLISH` on a Redis Cluster (sharded channels), else `PUBLISH`. */
  command: 'PUBLISH' | 'SPUBLISH'
  /** The ticker's channel prefix ({@link RedisKeys.channelPrefix}); the resolution completes it. */
  channelPrefix: string
  /** When the batch was accepted (epoch ms), carried by each change event. */
  acceptedAt?: number | undefined
}

/**
 * Plans lua/fold.lua for items of one ticker, each id at most once and believed unseen:
 * buckets and retention come from the domain's `groupByBucket`, and each bucket's items
 * are pre-aggregated so the script merges one partial aggregate per bucket. With
 * `publish`, the script publishes every bucket it changes (see lua/fold.lua).
 */
export function planFold (
  keys: RedisKeys,
  ticker: string,
  fresh: readonly ScoredItem[],
  options: { now: number, dedupeWindowMs: number, term?: TermGrant | undefined, publish?: FoldPublication | undefined }
): ScriptCall {
  const { now } = options
  const groups = [...groupByBucket(fresh, now).values()]
  const refs = groups.map((g) => g.ref)
  const { indexKeys, resolutions, pos } = indexSlots(keys, refs)
  const slices = dedupeSlices(now, options.dedupeWindowMs)
  const earlier = slices.checked.filter((slice) => slice !== slices.current)
  const args: Array<string | Buffer> = [
    String(slices.currentExpiresAt), String(refs.length), String(indexKeys.length), String(fresh.length), String(earlier.length)
  ]
  for (const resolution of resolutions) args.push(String(indexTtlMs(resolution)), String(indexTrimBefore(resolution, now)))
  groups.forEach((group, i) => {
    const delta = foldAggregate(group.items)
    if (delta === undefined) throw new Error('empty bucket group')
    args.push(dirtyMember(group.ref), String(bucketTtlMs(group.ref, now)), String(pos[i]), String(group.ref.start), ...encodeAggregate(delta))
  })
  for (const item of fresh) args.push(dedupeFingerprint(ticker, item.id))
  args.push(String(MAX_SOURCES), options.term?.run ?? '', options.term === undefined ? '' : String(options.term.term))
  const { publish } = options
  args.push(ticker, publish?.command ?? '', publish?.channelPrefix ?? '', publish?.acceptedAt === undefined ? '' : numberText(publish.acceptedAt))
  // A fault test's clock skew for this ticker's Redis (0 unless armed).
  args.push(String(faultSkew(`hot.clock.${ticker}`)))
  return {
    keys: [
      keys.seenSlice(ticker, slices.current), keys.dirty(ticker), ...refs.map((r) => keys.bucket(r)), ...indexKeys,
      ...earlier.map((slice) => keys.seenSlice(ticker, slice)), keys.dirtyGen(ticker), keys.position(ticker)
    ],
    args,
    refs
  }
}

/** What lua/fold.lua answered. */
export type FoldReply =
  /** 1-based positions, among the planned items, of those already seen. */
  | { kind: 'dup', positions: number[] }
  | { kind: 'load', refs: BucketRef[] }
  /** The ticker needs a term for this Redis run (see lua/fold.lua). */
  | { kind: 'term', run: string }
  /** `gen`: the ticker's new dirty-gen when its dirty set was empty before, else 0. */
  | { kind: 'ok', changed: Bucket[], gen: number }

function refAt (refs: readonly BucketRef[], oneBased: unknown): BucketRef {
  const ref = refs[Number(oneBased) - 1]
  if (ref === undefined) throw new Error(`fold script named bucket ${String(oneBased)} of ${refs.length}`)
  return ref
}

/** Parses the reply of lua/fold.lua against the refs of its {@link ScriptCall}. */
export function parseFoldReply (reply: unknown, refs: readonly BucketRef[]): FoldReply {
  if (!Array.isArray(reply)) throw new Error('fold script returned no list')
  const [kind, ...rest] = reply as unknown[]
  if (kind === 'dup') return { kind, positions: rest.map(Number) }
  if (kind === 'load') return { kind, refs: rest.map((i) => refAt(refs, i)) }
  if (kind === 'term') return { kind, run: String(rest[0]) }
  if (kind !== 'ok') throw new Error(`fold script returned ${String(kind)}`)
  const [gen, ...states] = rest
  const changed = states.map((entry) => {
    const [index, ...values] = entry as string[]
    const bucket = decodeBucket(refAt(refs, index), values)
    if (bucket === undefined) throw new Error('fold script returned an empty bucket')
    return bucket
  })
  return { kind, changed, gen: Number(gen) }
}

/**
 * Plans lua/seed.lua for refs of one ticker: buckets from `found` are installed, the rest
 * become known-empty markers.
 */
export function planSeed (keys: RedisKeys, refs: readonly BucketRef[], found: ReadonlyMap<string, Bucket>, now: number): ScriptCall {
  const { indexKeys, resolutions, pos } = indexSlots(keys, refs)
  const args: string[] = [String(refs.length), String(indexKeys.length)]
  for (const resolution of resolutions) args.push(String(indexTtlMs(resolution)))
  const empty: string[] = new Array<string>(BUCKET_FIELDS.length).fill('')
  refs.forEach((ref, i) => {
    const bucket = found.get(keys.bucket(ref))
    args.push(String(pos[i]), numberText(ref.start), String(bucketTtlMs(ref, now)), ...(bucket === undefined ? empty : encodeBucket(bucket)))
  })
  const ticker = refs[0]?.ticker ?? ''
  return { keys: [...refs.map((r) => keys.bucket(r)), ...indexKeys, keys.position(ticker)], args, refs: refs.slice() }
}

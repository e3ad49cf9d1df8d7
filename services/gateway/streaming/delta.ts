import { type BucketDelta, deltaKey } from '../../../shared/stream-delta.js'
import { type Bucket, isPartial } from '../../../shared/timeseries/bucket.js'
import { progressPct } from '../../../shared/timeseries/resolutions.js'

/**
 * The `bucket_delta` message of `next` against `base`, an earlier state of the same
 * bucket (see shared/stream-delta.ts): the stored fields that differ, and the progress of
 * a partial bucket at `now`. Applied to the full state of `base` it gives the full state
 * of `next` at `now`, field for field.
 */
export function bucketDelta (base: Bucket, next: Bucket, now: number, id: string): BucketDelta {
  const delta: BucketDelta = { type: 'bucket_delta', id, k: deltaKey(next.ticker, next.resolution, next.start), b: base.rev }
  if (next.open !== base.open) delta.o = next.open
  if (next.high !== base.high) delta.h = next.high
  if (next.low !== base.low) delta.l = next.low
  if (next.close !== base.close) delta.c = next.close
  if (next.count !== base.count) delta.n = next.count
  if (next.sum !== base.sum) delta.s = next.sum
  if (next.label_counts.positive !== base.label_counts.positive) delta.lp = next.label_counts.positive
  if (next.label_counts.neutral !== base.label_counts.neutral) delta.ln = next.label_counts.neutral
  if (next.label_counts.negative !== base.label_counts.negative) delta.lg = next.label_counts.negative
  if (next.sources.length !== base.sources.length || next.sources.some((source, i) => source !== base.sources[i])) delta.src = next.sources
  if ((next.sources_truncated === true) !== (base.sources_truncated === true)) delta.st = next.sources_truncated === true
  if (next.rev !== base.rev) delta.r = next.rev
  const updated = Math.floor(next.last_updated / 1000)
  if (updated !== Math.floor(base.last_updated / 1000)) delta.u = updated
  if (isPartial(next, now)) delta.pp = progressPct(next.start, next.resolution, now)
  return delta
}

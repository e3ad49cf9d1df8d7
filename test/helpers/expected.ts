import { type Aggregate, type Bucket, foldAggregate, groupByBucket, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { type BucketRef, bucketId } from '../../shared/timeseries/keys.js'
import { firstCopies } from './items.js'

/** The buckets the domain says these items make, keyed by `bucketId`. */
export function expectedBuckets (items: readonly ScoredItem[], now: number): Map<string, { ref: BucketRef, aggregate: Aggregate }> {
  const expected = new Map<string, { ref: BucketRef, aggregate: Aggregate }>()
  for (const group of groupByBucket(firstCopies(items), now).values()) {
    expected.set(bucketId(group.ref), { ref: group.ref, aggregate: foldAggregate(group.items) as Aggregate })
  }
  return expected
}

/** The differences between a stored bucket and the expected aggregate (empty: equal). */
export function differences (actual: Pick<Bucket, 'open' | 'high' | 'low' | 'close' | 'count' | 'sum' | 'label_counts' | 'sources'> | undefined, expected: Aggregate): string[] {
  if (actual === undefined) return ['missing']
  const problems: string[] = []
  for (const field of ['open', 'high', 'low', 'close', 'count'] as const) {
    if (actual[field] !== expected[field]) problems.push(`${field} ${actual[field]} ≠ ${expected[field]}`)
  }
  if (Math.abs(actual.sum - expected.sum) > 1e-9 * Math.max(1, Math.abs(expected.sum))) problems.push(`sum ${actual.sum} ≠ ${expected.sum}`)
  if (JSON.stringify(actual.label_counts) !== JSON.stringify(expected.label_counts)) problems.push('label_counts')
  if (JSON.stringify(actual.sources) !== JSON.stringify(expected.sources)) problems.push('sources')
  return problems
}

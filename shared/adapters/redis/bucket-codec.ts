import type { Aggregate, Bucket } from '../../timeseries/bucket.js'
import type { BucketRef } from '../../timeseries/keys.js'

/**
 * Hash fields of a stored bucket, in the order the Lua scripts read and return them.
 * The first fourteen are the aggregate; `rev`, `upd` (last_updated), `seq` and `ep` (the
 * journal epoch of `seq`) follow, then `trunc` ('1' when sources were left out; the
 * aggregate's last field, kept at the end so older hashes read the same).
 */
export const BUCKET_FIELDS = ['o', 'h', 'l', 'c', 'n', 's', 'pos', 'neu', 'neg', 'src', 'fts', 'fid', 'lts', 'lid', 'rev', 'upd', 'seq', 'ep', 'trunc'] as const

/** Number of aggregate fields passed per bucket to the fold script (the fourteen, then `trunc`). */
export const AGGREGATE_FIELD_COUNT = 15

/**
 * A number as text that parses back to the same double, `-0` included (scripts format
 * with `%.17g`, which also round-trips).
 */
export function numberText (value: number): string {
  return Object.is(value, -0) ? '-0' : String(value)
}

/** The aggregate fields of a bucket hash, in {@link BUCKET_FIELDS} order. */
export function encodeAggregate (agg: Aggregate): string[] {
  return [
    numberText(agg.open), numberText(agg.high), numberText(agg.low), numberText(agg.close),
    numberText(agg.count), numberText(agg.sum),
    numberText(agg.label_counts.positive), numberText(agg.label_counts.neutral), numberText(agg.label_counts.negative),
    JSON.stringify(agg.sources),
    numberText(agg.first.ts), agg.first.id, numberText(agg.last.ts), agg.last.id,
    agg.sources_truncated === true ? '1' : ''
  ]
}

/** Every field of a bucket hash, in {@link BUCKET_FIELDS} order; `seq` and `ep` are empty when unset. */
export function encodeBucket (bucket: Bucket): string[] {
  const aggregate = encodeAggregate(bucket)
  return [
    ...aggregate.slice(0, 14),
    numberText(bucket.rev),
    numberText(bucket.last_updated),
    bucket.seq === undefined ? '' : numberText(bucket.seq),
    bucket.epoch ?? '',
    aggregate[14] as string
  ]
}

function parseSources (text: string): string[] {
  const parsed: unknown = JSON.parse(text)
  // Lua's cjson writes an empty table as `{}`.
  return Array.isArray(parsed) ? parsed.map(String) : []
}

/**
 * A bucket from its hash fields (an HMGET of {@link BUCKET_FIELDS}); `undefined` when the
 * hash is missing or only marks a known-empty bucket.
 */
export function decodeBucket (ref: BucketRef, values: ReadonlyArray<string | null | undefined>): Bucket | undefined {
  const field = (i: number): string => values[i] ?? ''
  if (values[4] === null || values[4] === undefined || values[4] === '') return undefined
  const bucket: Bucket = {
    ticker: ref.ticker,
    resolution: ref.resolution,
    start: ref.start,
    open: Number(field(0)),
    high: Number(field(1)),
    low: Number(field(2)),
    close: Number(field(3)),
    count: Number(field(4)),
    sum: Number(field(5)),
    label_counts: { positive: Number(field(6)), neutral: Number(field(7)), negative: Number(field(8)) },
    sources: parseSources(field(9)),
    first: { ts: Number(field(10)), id: field(11) },
    last: { ts: Number(field(12)), id: field(13) },
    rev: Number(field(14)),
    last_updated: Number(field(15))
  }
  const seq = field(16)
  if (seq !== '') bucket.seq = Number(seq)
  const epoch = field(17)
  if (epoch !== '') bucket.epoch = epoch
  if (field(18) === '1') bucket.sources_truncated = true
  return bucket
}

import { type Bucket, type OrderKey, type WireBucket, toWireBucket } from '../../timeseries/bucket.js'
import { parseSeriesKey, seriesKey } from '../../timeseries/keys.js'
import { toIsoSecond, ttlSeconds } from '../../timeseries/resolutions.js'

/**
 * A bucket as stored in `{env}-sentiment-timeseries`. The client-facing attributes are
 * named as in the JSON bucket; `start`, `last_updated_ms`, `first`, `last`, `seq` and `epoch` are
 * what the merge law needs to keep folding into a bucket reloaded from the table.
 */
export interface BucketItem extends Omit<WireBucket, 'resolution' | 'progress_pct' | 'next_update_at'> {
  /** `TICKER#resolution`. */
  PK: string
  /** Bucket start, ISO 8601 UTC to the second. */
  SK: string
  resolution: string
  /** Epoch seconds = bucket end + retention (the table's TTL attribute). */
  ttl: number
  /** Bucket start, epoch ms. */
  start: number
  /** Exact `last_updated`, epoch ms. */
  last_updated_ms: number
  first: OrderKey
  last: OrderKey
  seq?: number
  epoch?: string
}

/** The table's key of a bucket. */
export function bucketKey (ref: { ticker: string, resolution: Bucket['resolution'], start: number }): { PK: string, SK: string } {
  return { PK: seriesKey(ref.ticker, ref.resolution), SK: toIsoSecond(ref.start) }
}

/** Marshals a bucket; `is_partial` is as of `now`, the time of the write. */
export function bucketToItem (bucket: Bucket, now: number): BucketItem {
  // The stored attributes are the wire bucket's; progress fields are for live views only.
  const { progress_pct: _progress, next_update_at: _next, ...wire } = toWireBucket(bucket, now)
  const item: BucketItem = {
    ...bucketKey(bucket),
    ...wire,
    ttl: ttlSeconds(bucket.start, bucket.resolution),
    start: bucket.start,
    last_updated_ms: bucket.last_updated,
    first: { ts: bucket.first.ts, id: bucket.first.id },
    last: { ts: bucket.last.ts, id: bucket.last.id }
  }
  if (bucket.seq !== undefined) item.seq = bucket.seq
  if (bucket.epoch !== undefined) item.epoch = bucket.epoch
  return item
}

/** A stored item that does not have the shape of a bucket. */
export class BucketItemError extends Error {
  constructor (readonly key: string, message: string) {
    super(`${key}: ${message}`)
    this.name = 'BucketItemError'
  }
}

type Raw = Record<string, unknown>

function field<T> (raw: Raw, name: string, check: (value: unknown) => value is T, key: string): T {
  const value = raw[name]
  if (!check(value)) throw new BucketItemError(key, `attribute ${name} is missing or malformed`)
  return value
}

const isNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)
const isString = (value: unknown): value is string => typeof value === 'string'
const isRecord = (value: unknown): value is Raw => typeof value === 'object' && value !== null && !Array.isArray(value)
const isStrings = (value: unknown): value is string[] => Array.isArray(value) && value.every(isString)

function orderKey (raw: Raw, name: string, key: string): OrderKey {
  const value = field(raw, name, isRecord, key)
  return { ts: field(value, 'ts', isNumber, key), id: field(value, 'id', isString, key) }
}

/** Unmarshals a stored item; throws {@link BucketItemError} naming the key when it is not a bucket. */
export function itemToBucket (raw: Raw): Bucket {
  const key = `${String(raw.PK)}/${String(raw.SK)}`
  const series = parseSeriesKey(field(raw, 'PK', isString, key))
  if (series === undefined) throw new BucketItemError(key, 'PK is not TICKER#resolution')
  const counts = field(raw, 'label_counts', isRecord, key)
  const bucket: Bucket = {
    ticker: series.ticker,
    resolution: series.resolution,
    start: field(raw, 'start', isNumber, key),
    open: field(raw, 'open', isNumber, key),
    high: field(raw, 'high', isNumber, key),
    low: field(raw, 'low', isNumber, key),
    close: field(raw, 'close', isNumber, key),
    count: field(raw, 'count', isNumber, key),
    sum: field(raw, 'sum', isNumber, key),
    label_counts: {
      positive: field(counts, 'positive', isNumber, key),
      neutral: field(counts, 'neutral', isNumber, key),
      negative: field(counts, 'negative', isNumber, key)
    },
    sources: field(raw, 'sources', isStrings, key).slice(),
    first: orderKey(raw, 'first', key),
    last: orderKey(raw, 'last', key),
    rev: field(raw, 'rev', isNumber, key),
    last_updated: field(raw, 'last_updated_ms', isNumber, key)
  }
  if (raw.seq !== undefined) bucket.seq = field(raw, 'seq', isNumber, key)
  if (raw.epoch !== undefined) bucket.epoch = field(raw, 'epoch', isString, key)
  if (raw.sources_truncated === true) bucket.sources_truncated = true
  return bucket
}

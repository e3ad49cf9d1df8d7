import { stringify } from 'csv-stringify/sync'
import type { WireBucket } from '../../../shared/timeseries/bucket.js'

/** The formats `GET /api/v2/timeseries/{ticker}/export` writes. */
export const EXPORT_FORMATS = ['csv', 'ndjson'] as const

export type ExportFormat = typeof EXPORT_FORMATS[number]

export function isExportFormat (value: unknown): value is ExportFormat {
  return typeof value === 'string' && (EXPORT_FORMATS as readonly string[]).includes(value)
}

/** `Content-Type` of each format. */
export const EXPORT_CONTENT_TYPES: Readonly<Record<ExportFormat, string>> = {
  csv: 'text/csv; charset=utf-8; header=present',
  ndjson: 'application/x-ndjson; charset=utf-8'
}

/** Separator of the source names in the CSV `sources` cell (source names never hold it). */
export const SOURCES_SEPARATOR = ';'

/**
 * The CSV columns, in order: the fields of the JSON bucket, with `label_counts` flattened
 * into one column per label and `sources` joined with {@link SOURCES_SEPARATOR}.
 * `progress_pct` and `next_update_at` are empty except in a bucket that has not ended.
 */
export const CSV_COLUMNS = [
  'ticker', 'resolution', 'timestamp', 'open', 'high', 'low', 'close', 'count', 'sum', 'avg',
  'label_counts.positive', 'label_counts.neutral', 'label_counts.negative', 'sources', 'sources_truncated',
  'last_updated', 'is_partial', 'rev', 'progress_pct', 'next_update_at'
] as const

function csvRecord (bucket: WireBucket): unknown[] {
  return [
    bucket.ticker, bucket.resolution, bucket.timestamp, bucket.open, bucket.high, bucket.low, bucket.close,
    bucket.count, bucket.sum, bucket.avg,
    bucket.label_counts.positive, bucket.label_counts.neutral, bucket.label_counts.negative,
    bucket.sources.join(SOURCES_SEPARATOR), bucket.sources_truncated, bucket.last_updated, bucket.is_partial, bucket.rev,
    bucket.progress_pct, bucket.next_update_at
  ]
}

/**
 * RFC 4180 text (CRLF line ends, fields quoted only where they must be) of a page of
 * buckets; `header` puts the header row first. Numbers are written as JSON writes them,
 * so each cell reads back to the JSON bucket's value; booleans as `true`/`false`.
 */
export function csvPage (buckets: readonly WireBucket[], header: boolean): string {
  return stringify(buckets.map(csvRecord), {
    header,
    columns: [...CSV_COLUMNS],
    record_delimiter: 'windows',
    cast: { boolean: (value) => value ? 'true' : 'false' }
  })
}

/** The header row alone, for an export with no buckets. */
export function csvHeader (): string {
  return csvPage([], true)
}

/** NDJSON of a page of buckets: one JSON bucket per line, as history's `buckets` holds it. */
export function ndjsonPage (buckets: readonly WireBucket[]): string {
  let text = ''
  for (const bucket of buckets) text += `${JSON.stringify(bucket)}\n`
  return text
}

import { Type } from '@sinclair/typebox'
import { TICKER_PATTERN } from '../../shared/timeseries/item.js'
import { RESOLUTIONS } from '../../shared/timeseries/resolutions.js'

export const ResolutionSchema = Type.Union(RESOLUTIONS.map((r) => Type.Literal(r)), { description: 'one of 1m 5m 10m 1h 3h 6h 12h 24h' })

export const LabelCountsSchema = Type.Object({
  positive: Type.Integer(),
  neutral: Type.Integer(),
  negative: Type.Integer()
})

/** A bucket on the wire (SPEC §2); partial buckets add progress fields. */
export const BucketSchema = Type.Object({
  ticker: Type.String(),
  resolution: Type.String(),
  timestamp: Type.String({ description: 'bucket start, ISO 8601 UTC' }),
  open: Type.Number(),
  high: Type.Number(),
  low: Type.Number(),
  close: Type.Number(),
  count: Type.Integer(),
  sum: Type.Number(),
  avg: Type.Number(),
  label_counts: LabelCountsSchema,
  sources: Type.Array(Type.String(), { description: 'distinct sources, sorted; the first 64' }),
  sources_truncated: Type.Boolean({ description: 'true when sources past the first 64 were left out of `sources`' }),
  last_updated: Type.String(),
  is_partial: Type.Boolean(),
  rev: Type.Integer(),
  progress_pct: Type.Optional(Type.Number()),
  next_update_at: Type.Optional(Type.String())
})

const OrderKeySchema = Type.Object({ ts: Type.Number(), id: Type.String() })
const { open, high, low, close, sum, label_counts: labelCounts, sources, rev } = BucketSchema.properties

/**
 * A message on a series channel as a gateway receives it (`BucketEvent`): the stored
 * bucket, checked with the fields of the API's {@link BucketSchema} plus what only the
 * stored form has. A gateway drops any message that does not match, so one bad publisher
 * cannot break the frames it builds for its clients.
 */
export const BusEventSchema = Type.Object({
  kind: Type.Union([Type.Literal('change'), Type.Literal('final')]),
  bucket: Type.Object({
    ticker: Type.String({ pattern: TICKER_PATTERN }),
    resolution: ResolutionSchema,
    start: Type.Integer(),
    open,
    high,
    low,
    close,
    count: Type.Integer({ minimum: 1 }),
    sum,
    label_counts: labelCounts,
    sources,
    sources_truncated: Type.Optional(Type.Literal(true)),
    first: OrderKeySchema,
    last: OrderKeySchema,
    rev,
    last_updated: Type.Integer(),
    seq: Type.Optional(Type.Integer())
  }),
  acceptedAt: Type.Optional(Type.Number()),
  lastAtRev: Type.Optional(Type.Literal(true))
})

export const TimeseriesResponseSchema = Type.Object({
  ticker: Type.String(),
  resolution: Type.String(),
  buckets: Type.Array(BucketSchema),
  partial_bucket: Type.Union([BucketSchema, Type.Null()]),
  cache_hit: Type.Boolean(),
  query_time_ms: Type.Number(),
  position: Type.String({ description: 'the series position this answer was read at: a stream client that applies it holds every state of the series up to there, and resumes from it (see the streaming protocol)' }),
  archive_unavailable: Type.Boolean({
    description: 'true when DynamoDB did not answer (an outage, or a read past its deadline): the answer holds only the buckets the hot state has, the recent ones, and older buckets of the range may be missing. Ask again later for the whole range.'
  })
})

/** HTTP history: a {@link TimeseriesResponseSchema} that may be one page of several. */
export const TimeseriesPageSchema = Type.Composite([TimeseriesResponseSchema, Type.Object({
  next: Type.Optional(Type.String({
    description: 'Only when the range holds more than 1500 completed buckets: the query string of the following page (`?resolution=…&start=…&end=…`), to be requested on the same path (resolve it against the URL of this request). The last page has none.'
  }))
})])

export const ErrorSchema = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Array(Type.Object({
      index: Type.Optional(Type.Integer()),
      field: Type.String(),
      message: Type.String()
    })))
  })
}, { description: 'Every error: a PULSE_ERR_* code, a message, and per-item details where they apply' })

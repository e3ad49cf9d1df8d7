// Plain JavaScript so k6 (goja) and the Node harness share one copy; types in events.d.ts.

const BUCKET_EVENTS = ['partial_bucket', 'bucket_update']
const KNOWN_EVENTS = [...BUCKET_EVENTS, 'heartbeat', 'subscribed', 'snapshot', 'pong', 'error']

/** True for the events that carry a bucket (and `accepted_at`). */
export function isBucketEvent (type) {
  return BUCKET_EVENTS.includes(type)
}

/**
 * Checks one streamed event against SPEC §4 and the client's subscription ("filter at
 * source"). Returns a problem description, or `undefined` when the event is fine.
 */
export function eventProblem (type, data, subscription) {
  if (!KNOWN_EVENTS.includes(type)) return `unknown event type ${JSON.stringify(type)}`
  if (data === null || typeof data !== 'object') return `${type}: data is not an object`
  if (type === 'heartbeat') return typeof data.connections === 'number' ? undefined : 'heartbeat: no connections count'
  if (!isBucketEvent(type)) return undefined
  if (!subscription.tickers.includes(data.ticker)) return `${type}: ticker ${data.ticker} not subscribed`
  if (!subscription.resolutions.includes(data.resolution)) return `${type}: resolution ${data.resolution} not subscribed`
  const bucket = data.bucket
  if (bucket === null || typeof bucket !== 'object') return `${type}: no bucket`
  if (bucket.ticker !== data.ticker || bucket.resolution !== data.resolution) return `${type}: bucket belongs to ${bucket.ticker}#${bucket.resolution}`
  if (typeof bucket.count !== 'number' || typeof bucket.timestamp !== 'string') return `${type}: bucket lacks count or timestamp`
  if (type === 'partial_bucket' && typeof data.progress_pct !== 'number') return 'partial_bucket: no progress_pct'
  // Events no ingest caused (a finalized bucket) carry no `accepted_at`; when present it is epoch ms.
  if (data.accepted_at !== undefined && (typeof data.accepted_at !== 'number' || !Number.isFinite(data.accepted_at))) return `${type}: accepted_at is not epoch ms`
  return undefined
}

/**
 * Ingest-to-client latency of a bucket event in ms, or `undefined` when the event does not
 * measure it. Only `partial_bucket` counts: a `bucket_update` may come from the finalizer
 * at a bucket's end, which no ingest caused, so its `accepted_at` says nothing about latency.
 */
export function liveLatencyMs (type, data, receivedAt) {
  if (type !== 'partial_bucket' || typeof data.accepted_at !== 'number') return undefined
  return receivedAt - data.accepted_at
}

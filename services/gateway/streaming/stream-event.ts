import type { BucketEvent } from '../../../shared/ports/index.js'
import { type Bucket, bucketId, isPartial, toIsoSecond, toWireBucket } from '../../../shared/timeseries/index.js'
import { formatEventId, streamTime } from './event-id.js'

/** Wire name of a bucket event: the current bucket, or a completed or late-changed one. */
export type BucketEventType = 'partial_bucket' | 'bucket_update'

/** One frame's worth of an event, in the two encodings. */
export interface Rendered {
  /** WebSocket message: a JSON object with `type`. */
  ws: string
  /** The same, UTF-8 encoded once, so a fan-out does not encode it again per socket. */
  wsBytes: Buffer
  /** SSE block: `id:`, `event:`, `data:` and the blank line. */
  sse: string
}

/** Renders older than this are recomputed, so `progress_pct` stays current. */
const RENDER_REUSE_MS = 20

/**
 * A bucket state on its way to clients. One instance per bus event is shared by every
 * watcher of the channel, and so is its rendering: a fan-out to 10,000 clients serializes
 * the bucket once, not 10,000 times.
 */
export class StreamEvent {
  /** Mailbox key: one pending state per bucket. */
  readonly key: string
  /** Stream time, the event id. */
  readonly time: number
  #rendered: Rendered | undefined
  #renderedAt = 0

  constructor (
    readonly bucket: Bucket,
    readonly kind: BucketEvent['kind'] | 'resume',
    now: number,
    readonly acceptedAt?: number
  ) {
    this.key = bucketId(bucket)
    this.time = streamTime(bucket, kind, now)
  }

  static fromBus (event: BucketEvent, now: number): StreamEvent {
    return new StreamEvent(event.bucket, event.kind, now, event.acceptedAt)
  }

  /** Whether this state should replace `other` of the same bucket: newest state wins. */
  supersedes (other: StreamEvent): boolean {
    if (this.bucket.rev !== other.bucket.rev) return this.bucket.rev > other.bucket.rev
    return this.time >= other.time
  }

  render (now: number): Rendered {
    if (this.#rendered !== undefined && Math.abs(now - this.#renderedAt) <= RENDER_REUSE_MS) return this.#rendered
    const bucket = toWireBucket(this.bucket, now)
    const type: BucketEventType = isPartial(this.bucket, now) ? 'partial_bucket' : 'bucket_update'
    const payload: Record<string, unknown> = { ticker: bucket.ticker, resolution: bucket.resolution, bucket }
    if (type === 'partial_bucket') payload.progress_pct = bucket.progress_pct
    if (this.acceptedAt !== undefined) payload.accepted_at = this.acceptedAt
    this.#rendered = renderEvent(type, payload, formatEventId(this.time))
    this.#renderedAt = now
    return this.#rendered
  }
}

/** Encodes one event for both transports; `id` is left out when undefined. */
export function renderEvent (type: string, payload: Record<string, unknown>, id?: string): Rendered {
  const data = JSON.stringify(payload)
  const head = id === undefined ? `{"type":"${type}"` : `{"type":"${type}","id":"${id}"`
  const ws = data === '{}' ? `${head}}` : `${head},${data.slice(1)}`
  return {
    ws,
    wsBytes: Buffer.from(ws),
    sse: `${id === undefined ? '' : `id: ${id}\n`}event: ${type}\ndata: ${data}\n\n`
  }
}

/** The gateway heartbeat event. */
export function renderHeartbeat (now: number, connections: number): Rendered {
  return renderEvent('heartbeat', { timestamp: toIsoSecond(now), connections })
}

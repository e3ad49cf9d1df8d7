import type { ErrorCode } from '../../../shared/errors.js'
import type { BucketDelta } from '../../../shared/stream-delta.js'
import type { LabelCounts, WireBucket } from '../../../shared/timeseries/bucket.js'
import type { Resolution } from '../../../shared/timeseries/resolutions.js'

/*
 * The wire types of Pulse's streaming protocol and history API, as the SDK reads and
 * writes them. test/unit/client-protocol.test.ts holds them against the gateway's TypeBox
 * schemas, so a change on either side that the other does not follow fails the type check.
 */

export type { BucketDelta, ErrorCode, LabelCounts, Resolution }

/** One bucket state (SPEC §2); partial buckets carry `progress_pct` and `next_update_at`. */
export type Bucket = WireBucket

/** `GET /api/v2/timeseries/{ticker}` and the WebSocket `snapshot` reply. */
export interface HistoryResponse {
  ticker: string
  resolution: string
  buckets: Bucket[]
  partial_bucket: Bucket | null
  cache_hit: boolean
  query_time_ms: number
  /** True when the archive did not answer: only the recent buckets the hot state holds are here; ask again later. */
  archive_unavailable: boolean
  /** The series position the answer was read at: a stream holding it resumes from there. */
  position: string
}

/** One page of `GET /api/v2/timeseries/{ticker}`: `client.history()` follows `next` and returns the whole range. */
export interface HistoryPage extends HistoryResponse {
  /** Only when a page follows: its query string, for the same path. */
  next?: string
}

/** One row of `GET /api/v2/tickers`. */
export interface TickerSummary {
  ticker: string
  partial_1m: Bucket | null
  partial_24h: Bucket | null
}

/** `{"op":"subscribe"}`: tickers × resolutions, resuming each series `positions` names from its position. */
export interface SubscribeMessage {
  op: 'subscribe'
  tickers: string[]
  resolutions: string[]
  positions?: Record<string, string>
}

export interface UnsubscribeMessage {
  op: 'unsubscribe'
  tickers: string[]
  resolutions: string[]
}

export interface SnapshotMessage {
  op: 'snapshot'
  id: string
  ticker: string
  resolution: string
  start?: string
  end?: string
}

export interface PingMessage {
  op: 'ping'
}

/** Replaces the connection's JWT before its `exp`. */
export interface RefreshMessage {
  op: 'refresh'
  token: string
}

/** Everything the SDK sends on a WebSocket. */
export type ClientMessage = SubscribeMessage | UnsubscribeMessage | SnapshotMessage | PingMessage | RefreshMessage

/** A bucket changed (`partial_bucket`: the current one; `bucket_update`: a completed or late-changed one). */
export interface BucketEvent {
  type: 'partial_bucket' | 'bucket_update'
  id: string
  ticker: string
  resolution: string
  bucket: Bucket
  progress_pct?: number
  accepted_at?: number
}

export interface HeartbeatEvent {
  type: 'heartbeat'
  timestamp: string
  connections: number
}

export interface SubscribedEvent {
  type: 'subscribed'
  op: 'subscribe' | 'unsubscribe'
  tickers: string[]
  resolutions: string[]
  subscriptions: number
  replayed?: number
  /** Series of a resume that could not be continued: snapshot each afresh and replace what is held. */
  not_recovered?: string[]
}

/** Event stream only, first when it resumed: series not recovered get their whole window next. */
export interface ResumedEvent {
  type: 'resumed'
  replayed: number
  not_recovered: string[]
}

export interface SnapshotEvent extends HistoryResponse {
  type: 'snapshot'
  id: string
}

export interface PongEvent {
  type: 'pong'
  timestamp: string
}

/** Reply to `refresh`: the new token's `exp`, and the series it no longer covers. */
export interface RefreshedEvent {
  type: 'refreshed'
  expires_at: string
  dropped: string[]
}

export interface ErrorEvent {
  type: 'error'
  code: string
  message: string
  id?: string
  /** Series refused on their own (entitlement), `ticker#resolution`: the rest of the request stands. */
  series?: string[]
}

/** Everything a gateway sends (SSE carries the bucket events and heartbeats). */
export type ServerEvent = BucketEvent | BucketDelta | HeartbeatEvent | SubscribedEvent | ResumedEvent | SnapshotEvent | PongEvent | RefreshedEvent | ErrorEvent

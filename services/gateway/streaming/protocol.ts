import { type Static, Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { type ErrorCode, ERRORS } from '../../../shared/errors.js'
import type { BucketEvent } from '../../../shared/ports/bus.js'
import { type Bucket, isPartial, toWireBucket } from '../../../shared/timeseries/bucket.js'
import { bucketId, type SeriesKey, seriesKey } from '../../../shared/timeseries/keys.js'
import { bucketEnd, isResolution, type Resolution, toIsoSecond } from '../../../shared/timeseries/resolutions.js'
import { isNewerState } from '../../../shared/timeseries/revision.js'
import { BucketSchema, TimeseriesResponseSchema } from '../schemas.js'
import type { TickerLookup } from '../readable-tickers.js'
import { bucketDelta } from './delta.js'

/*
 * The streaming protocol, the same on both engines and both transports: the protocol's
 * limits and close codes, what clients may send, what the gateway sends and how each event
 * is encoded (once, for every client), event ids and resume, and the selection of series.
 */

// ---- Limits and close codes

export { CloseCode, MAX_MESSAGE_BYTES, MAX_SUBSCRIPTIONS, RETRY_AFTER_SECONDS } from '../../../shared/stream-limits.js'

/** Why the gateway ends a connection; each maps to a close code and a reconnect hint. */
export type CloseReason = 'restart' | 'stalled' | 'flood' | 'expired'

/** The close text sent with each reason. */
export const CLOSE_TEXT: Record<CloseReason, string> = {
  restart: 'service restart; reconnect',
  stalled: 'client too slow; reconnect and resume',
  flood: 'too many messages',
  expired: 'token expired; refresh before exp'
}

/** How long a closing WebSocket may take to finish its close handshake before it is dropped. */
export const CLOSE_GRACE_MS = 5000

/** Reconnection delay sent to EventSource clients, ms. */
export const SSE_RETRY_MS = 1000

/** The status line headers of an event stream (the gateway's CORS and security headers come on top). */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  // Proxies such as nginx would otherwise buffer the stream.
  'x-accel-buffering': 'no'
}

/** The first bytes of every event stream: the reconnection delay and a comment. */
export const SSE_PREAMBLE = `retry: ${SSE_RETRY_MS}\n: pulse stream\n\n`

/** The last bytes of an event stream ended by a restart: come straight back. */
export const SSE_RESTART = `retry: ${SSE_RETRY_MS}\n: service restart; reconnect\n\n`

/** An SSE comment that keeps proxies from timing out an idle stream. */
export const SSE_KEEP_ALIVE = Buffer.from(': keep-alive\n\n')

// ---- Client messages

const Tickers = Type.Array(Type.String({ maxLength: 16 }), { minItems: 1, maxItems: 256 })
const Resolutions = Type.Array(Type.String({ maxLength: 8 }), { minItems: 1, maxItems: 8 })

/** `{"op":"subscribe","tickers":["AAPL"],"resolutions":["1m"],"positions"?:{"AAPL#1m":"<position>"}}` */
export const SubscribeMessageSchema = Type.Object({
  op: Type.Literal('subscribe'),
  tickers: Tickers,
  resolutions: Resolutions,
  positions: Type.Optional(Type.Record(Type.String({ maxLength: 24 }), Type.String({ maxLength: 20 }), {
    maxProperties: 256,
    description: 'resume: per ticker#resolution, the position the client holds (the id of the last event or snapshot of that series); each series is replayed from there or reported not recovered'
  }))
}, { additionalProperties: false })

/** `{"op":"unsubscribe","tickers":[...],"resolutions":[...]}` */
export const UnsubscribeMessageSchema = Type.Object({
  op: Type.Literal('unsubscribe'),
  tickers: Tickers,
  resolutions: Resolutions
}, { additionalProperties: false })

/** `{"op":"snapshot","id":"r1","ticker":"AAPL","resolution":"1h","start"?,"end"?}` */
export const SnapshotMessageSchema = Type.Object({
  op: Type.Literal('snapshot'),
  id: Type.String({ minLength: 1, maxLength: 64 }),
  ticker: Type.String({ maxLength: 16 }),
  resolution: Type.String({ maxLength: 8 }),
  start: Type.Optional(Type.String({ maxLength: 40 })),
  end: Type.Optional(Type.String({ maxLength: 40 }))
}, { additionalProperties: false })

/** `{"op":"ping"}` */
export const PingMessageSchema = Type.Object({ op: Type.Literal('ping') }, { additionalProperties: false })

/** `{"op":"refresh","token":"<jwt>"}`: replaces the connection's token before it expires. */
export const RefreshMessageSchema = Type.Object({
  op: Type.Literal('refresh'),
  token: Type.String({ minLength: 1, maxLength: 8192 })
}, { additionalProperties: false })

export const ClientMessageSchema = Type.Union([SubscribeMessageSchema, UnsubscribeMessageSchema, SnapshotMessageSchema, PingMessageSchema, RefreshMessageSchema])

export type SubscribeMessage = Static<typeof SubscribeMessageSchema>
export type UnsubscribeMessage = Static<typeof UnsubscribeMessageSchema>
export type SnapshotMessage = Static<typeof SnapshotMessageSchema>
export type RefreshMessage = Static<typeof RefreshMessageSchema>
export type ClientMessage = Static<typeof ClientMessageSchema>

const checks = {
  subscribe: TypeCompiler.Compile(SubscribeMessageSchema),
  unsubscribe: TypeCompiler.Compile(UnsubscribeMessageSchema),
  snapshot: TypeCompiler.Compile(SnapshotMessageSchema),
  ping: TypeCompiler.Compile(PingMessageSchema),
  refresh: TypeCompiler.Compile(RefreshMessageSchema)
}

/** A parsed client message, or why it was rejected. */
export type ParsedMessage = { ok: true, message: ClientMessage } | { ok: false, message: string }

/** Parses and validates one WebSocket text message. */
export function parseClientMessage (text: string): ParsedMessage {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, message: 'not JSON' }
  }
  const op = typeof value === 'object' && value !== null ? (value as { op?: unknown }).op : undefined
  if (typeof op !== 'string' || !Object.hasOwn(checks, op)) {
    return { ok: false, message: 'op must be one of subscribe, unsubscribe, snapshot, ping, refresh' }
  }
  const check = checks[op as keyof typeof checks]
  const error = check.Errors(value).First()
  if (error !== undefined) return { ok: false, message: `${error.path || op}: ${error.message}` }
  return { ok: true, message: value as ClientMessage }
}

// ---- Server events

const Common = { ticker: Type.String(), resolution: Type.String() }
const EventId = Type.String({ description: 'the series position once this event is held (WebSocket; resume with `positions`); on an event stream, the resume token of the whole stream (resume with Last-Event-ID)' })
const AcceptedAt = Type.Optional(Type.Integer({ description: 'when the batch that caused it was accepted, epoch ms' }))

/** Server events (WebSocket: these objects; SSE: `event:` = type, `data:` = the rest). */
export const ServerEvents = {
  partial_bucket: Type.Object({ type: Type.Literal('partial_bucket'), id: EventId, ...Common, bucket: BucketSchema, progress_pct: Type.Number(), accepted_at: AcceptedAt }),
  bucket_update: Type.Object({ type: Type.Literal('bucket_update'), id: EventId, ...Common, bucket: BucketSchema, accepted_at: AcceptedAt }),
  bucket_delta: Type.Object({
    type: Type.Literal('bucket_delta'),
    id: EventId,
    k: Type.String({ description: 'the bucket: ticker#resolution@start, start in epoch seconds' }),
    b: Type.Integer({ description: 'the rev of the state this delta applies to: the one of this bucket the connection received last' }),
    o: Type.Optional(Type.Number({ description: 'open' })),
    h: Type.Optional(Type.Number({ description: 'high' })),
    l: Type.Optional(Type.Number({ description: 'low' })),
    c: Type.Optional(Type.Number({ description: 'close' })),
    n: Type.Optional(Type.Integer({ description: 'count' })),
    s: Type.Optional(Type.Number({ description: 'sum' })),
    lp: Type.Optional(Type.Integer({ description: 'label_counts.positive' })),
    ln: Type.Optional(Type.Integer({ description: 'label_counts.neutral' })),
    lg: Type.Optional(Type.Integer({ description: 'label_counts.negative' })),
    src: Type.Optional(Type.Array(Type.String(), { description: 'sources' })),
    st: Type.Optional(Type.Boolean({ description: 'sources_truncated' })),
    r: Type.Optional(Type.Integer({ description: 'rev' })),
    u: Type.Optional(Type.Integer({ description: 'last_updated, epoch seconds' })),
    pp: Type.Optional(Type.Number({ description: 'progress_pct; present exactly when the bucket is partial (avg, is_partial and next_update_at follow from the rest)' }))
  }, { description: 'WebSocket with encoding=delta only: the fields of a bucket that changed since the state of it this connection received last (fields left out are unchanged)' }),
  heartbeat: Type.Object({ type: Type.Literal('heartbeat'), timestamp: Type.String(), connections: Type.Integer() }),
  subscribed: Type.Object({
    type: Type.Literal('subscribed'),
    op: Type.Union([Type.Literal('subscribe'), Type.Literal('unsubscribe')]),
    tickers: Type.Array(Type.String()),
    resolutions: Type.Array(Type.String()),
    subscriptions: Type.Integer({ description: 'series this client now watches' }),
    replayed: Type.Optional(Type.Integer({ description: 'buckets queued for a resume' })),
    not_recovered: Type.Optional(Type.Array(Type.String(), { description: 'ticker#resolution of a resume that could not be continued: take a fresh snapshot of each and replace what is held' }))
  }),
  resumed: Type.Object({
    type: Type.Literal('resumed'),
    replayed: Type.Integer({ description: 'buckets replayed' }),
    not_recovered: Type.Array(Type.String(), { description: 'ticker#resolution whose whole window follows instead: replace what is held' })
  }, { description: 'event stream only, first, when Last-Event-ID was given' }),
  snapshot: Type.Intersect([Type.Object({ type: Type.Literal('snapshot'), id: Type.String() }), TimeseriesResponseSchema]),
  pong: Type.Object({ type: Type.Literal('pong'), timestamp: Type.String() }),
  refreshed: Type.Object({ type: Type.Literal('refreshed'), expires_at: Type.String({ description: 'the new token\'s exp, ISO 8601' }), dropped: Type.Array(Type.String({ description: 'ticker#resolution the new token no longer covers' })) }),
  error: Type.Object({
    type: Type.Literal('error'),
    code: Type.String(),
    message: Type.String(),
    id: Type.Optional(Type.String()),
    series: Type.Optional(Type.Array(Type.String(), { description: 'ticker#resolution refused (or dropped by a refresh) on their own: the rest of the request stands, and this event is no reply to it' }))
  })
}

/** Wire name of a bucket event: the current bucket, or a completed or late-changed one. */
export type BucketEventType = 'partial_bucket' | 'bucket_update'

/**
 * One event, encoded once for every client of every transport. The bytes are shared: a
 * fan-out to 10,000 sockets writes the same buffers 10,000 times and encodes nothing.
 */
export interface Rendered {
  /** WebSocket message: a JSON object with `type`. */
  readonly ws: string
  /** The same, UTF-8 encoded. */
  readonly wsBytes: Buffer
  /** SSE block: `event:`, `data:` and the blank line, UTF-8 encoded (the sink adds `id:`). */
  readonly sse: Buffer
  /**
   * The complete WebSocket frame (header and payload) of `wsBytes`, built on first use by
   * an engine that writes frames to its sockets itself.
   */
  wsFrame?: Buffer
  /** The series of a bucket event: every client it goes to watches it (uWS publishes on it). */
  topic?: SeriesKey
  /** The series position of a bucket event, its `id` (an event stream's id is the connection's resume token instead). */
  position?: number
  /** A `bucket_delta` message: only for delta connections that hold its base (uWS publishes it on the series' delta topic). */
  delta?: true
}

/** The uWS topic of a series' delta messages, which delta connections subscribe to instead of the series'. */
export function deltaTopic (series: SeriesKey): string {
  return `${series}~delta`
}

/** Encodes one event for both transports; `id` is left out when undefined. */
export function renderEvent (type: string, payload: Record<string, unknown>, id?: string): Rendered {
  const data = JSON.stringify(payload)
  const head = id === undefined ? `{"type":"${type}"` : `{"type":"${type}","id":"${id}"`
  const ws = data === '{}' ? `${head}}` : `${head},${data.slice(1)}`
  return {
    ws,
    wsBytes: Buffer.from(ws),
    // An event stream's `id:` is its connection's resume token, which its sink puts first.
    sse: Buffer.from(`event: ${type}\ndata: ${data}\n\n`)
  }
}

/** The gateway heartbeat event. */
export function renderHeartbeat (now: number, connections: number): Rendered {
  return renderEvent('heartbeat', { timestamp: toIsoSecond(now), connections })
}

// ---- Positions and stream time

/** The wire form of a series position (an event id, a `positions` value; see resume.ts). */
export function formatPosition (position: number): string {
  return String(position)
}

/** Reads a position sent by a client; undefined when it is not one. */
export function parsePosition (text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,16}$/.test(text)) return undefined
  const position = Number(text)
  return Number.isSafeInteger(position) ? position : undefined
}

/**
 * The stream time of a bucket state: its `last_updated`, or its end once it is complete
 * and the change is its completion. It orders two copies of one state at one position (a
 * bucket's completion is sent at the position of its last change); positions order the rest.
 */
export function streamTime (bucket: Bucket, kind: BucketEvent['kind'] | 'resume', now: number): number {
  const end = bucketEnd(bucket.start, bucket.resolution)
  if (kind === 'final' || (kind === 'resume' && end <= now)) return Math.max(bucket.last_updated, end)
  return bucket.last_updated
}

/** Renders older than this are recomputed, so `progress_pct` stays current. */
const RENDER_REUSE_MS = 20

/**
 * A bucket state on its way to clients. One instance per bus event is shared by every
 * watcher of the channel, and so is its rendering: a fan-out to 10,000 clients serializes
 * the bucket once, not 10,000 times.
 */
export class StreamEvent {
  /** One pending state per bucket: the connection's key for it. */
  readonly key: string
  /** The `ticker#resolution` the bucket belongs to. */
  readonly series: SeriesKey
  /** Stream time: orders two copies of a state at one position. */
  readonly time: number
  /**
   * The series position a client holds once it has this event, its event id (see
   * resume.ts): every state of the series up to it has reached the client. Whoever
   * sends the event may only lower it (a state of the series still waiting), and only
   * before the first render.
   */
  position: number
  /**
   * The rev of the oldest state of this bucket the event stands for: its own, or, when it
   * replaced states waiting to be sent, the first of those (the client has none of them).
   */
  since: number
  /**
   * The state of this bucket the channel sent before this one, if it remembers it: a
   * delta connection whose last received state of the bucket is exactly this one gets
   * {@link renderDelta} instead of the full state.
   */
  deltaBase: Bucket | undefined
  #rendered: Rendered | undefined
  #renderedAt = 0
  #delta: Rendered | undefined
  #deltaAt = 0

  constructor (
    readonly bucket: Bucket,
    readonly kind: BucketEvent['kind'] | 'resume',
    now: number,
    position: number,
    readonly acceptedAt?: number
  ) {
    this.key = bucketId(bucket)
    this.series = seriesKey(bucket.ticker, bucket.resolution)
    this.time = streamTime(bucket, kind, now)
    this.position = position
    this.since = bucket.rev
  }

  static fromBus (event: BucketEvent, now: number, position: number): StreamEvent {
    return new StreamEvent(event.bucket, event.kind, now, position, event.acceptedAt)
  }

  /** This state with a lower position, for one connection that still waits for an earlier state of the series. */
  withPosition (position: number): StreamEvent {
    const copy = new StreamEvent(this.bucket, this.kind, 0, position, this.acceptedAt)
    ;(copy as { time: number }).time = this.time
    copy.since = this.since
    copy.deltaBase = this.deltaBase
    return copy
  }

  /**
   * Whether this state should replace `other` of the same bucket: the newer position wins
   * ({@link isNewerState}); of two copies at one position, the later event (a bucket's
   * completion is sent at the position of its last change).
   */
  supersedes (other: StreamEvent): boolean {
    if (isNewerState(this.bucket, other.bucket)) return true
    return !isNewerState(other.bucket, this.bucket) && this.time >= other.time
  }

  render (now: number): Rendered {
    if (this.#rendered !== undefined && Math.abs(now - this.#renderedAt) <= RENDER_REUSE_MS) return this.#rendered
    const bucket = toWireBucket(this.bucket, now)
    const type: BucketEventType = isPartial(this.bucket, now) ? 'partial_bucket' : 'bucket_update'
    const payload: Record<string, unknown> = { ticker: bucket.ticker, resolution: bucket.resolution, bucket }
    if (type === 'partial_bucket') payload.progress_pct = bucket.progress_pct
    if (this.acceptedAt !== undefined) payload.accepted_at = this.acceptedAt
    this.#rendered = renderEvent(type, payload, formatPosition(this.position))
    this.#rendered.topic = this.series
    this.#rendered.position = this.position
    this.#renderedAt = now
    return this.#rendered
  }

  /**
   * The `bucket_delta` message against {@link deltaBase}, encoded once for every delta
   * watcher (WebSocket only; callers check `deltaBase` is set).
   */
  renderDelta (now: number): Rendered {
    if (this.#delta !== undefined && Math.abs(now - this.#deltaAt) <= RENDER_REUSE_MS) return this.#delta
    const ws = JSON.stringify(bucketDelta(this.deltaBase as Bucket, this.bucket, now, formatPosition(this.position)))
    const wsBytes = Buffer.from(ws)
    this.#delta = { ws, wsBytes, sse: wsBytes, topic: this.series, position: this.position, delta: true }
    this.#deltaAt = now
    return this.#delta
  }
}

// ---- Selection of series

/** A rejected selection: a catalogue code and a message naming the culprit. */
export interface SelectionError {
  code: ErrorCode
  message: string
}

/** Tickers × resolutions, checked against the readable tickers and the resolutions. */
export function selectSeries (tickers: readonly string[], resolutions: readonly string[], known: TickerLookup): SeriesKey[] | SelectionError {
  const badResolution = resolutions.find((r) => !isResolution(r))
  if (badResolution !== undefined) {
    return { code: 'PULSE_ERR_BAD_RESOLUTION', message: `${JSON.stringify(badResolution.slice(0, 16))}: ${ERRORS.PULSE_ERR_BAD_RESOLUTION.message}` }
  }
  const unknown = tickers.find((t) => !known.has(t))
  if (unknown !== undefined) return { code: 'PULSE_ERR_UNKNOWN_TICKER', message: `Unknown ticker ${JSON.stringify(unknown.slice(0, 16))}` }
  const keys = new Set<SeriesKey>()
  for (const ticker of tickers) for (const resolution of resolutions) keys.add(seriesKey(ticker, resolution as Resolution))
  return [...keys]
}

/** Splits a comma-separated query parameter. */
export function listParam (value: unknown): string[] {
  if (typeof value !== 'string') return []
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
}

import { type Static, Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { type ErrorCode, ERRORS } from '../../../shared/errors.js'
import type { BucketEvent } from '../../../shared/ports/index.js'
import { type Bucket, bucketEnd, bucketId, isPartial, isResolution, parseSeriesKey, type Resolution, type SeriesKey, seriesKey, toIsoSecond, toWireBucket } from '../../../shared/timeseries/index.js'
import { BucketSchema, TimeseriesResponseSchema } from '../schemas.js'
import type { SeriesCache } from '../series-cache.js'

/*
 * The streaming protocol, the same on both engines and both transports: the protocol's
 * limits and close codes, what clients may send, what the gateway sends and how each event
 * is encoded (once, for every client), event ids and resume, and the selection of series.
 */

// ---- Limits and close codes

export { CloseCode, MAX_MESSAGE_BYTES, MAX_SUBSCRIPTIONS, RETRY_AFTER_SECONDS } from '../../../shared/stream-limits.js'

/** Why the gateway ends a connection; each maps to a close code and a reconnect hint. */
export type CloseReason = 'restart' | 'stalled' | 'flood'

/** The close text sent with each reason. */
export const CLOSE_TEXT: Record<CloseReason, string> = {
  restart: 'service restart; reconnect',
  stalled: 'client too slow; reconnect and resume',
  flood: 'too many messages'
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

/** `{"op":"subscribe","tickers":["AAPL"],"resolutions":["1m"],"since"?:"<event id>"}` */
export const SubscribeMessageSchema = Type.Object({
  op: Type.Literal('subscribe'),
  tickers: Tickers,
  resolutions: Resolutions,
  since: Type.Optional(Type.String({ maxLength: 32, description: 'an event id: replay what changed after it' }))
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

export const ClientMessageSchema = Type.Union([SubscribeMessageSchema, UnsubscribeMessageSchema, SnapshotMessageSchema, PingMessageSchema])

export type SubscribeMessage = Static<typeof SubscribeMessageSchema>
export type UnsubscribeMessage = Static<typeof UnsubscribeMessageSchema>
export type SnapshotMessage = Static<typeof SnapshotMessageSchema>
export type ClientMessage = Static<typeof ClientMessageSchema>

const checks = {
  subscribe: TypeCompiler.Compile(SubscribeMessageSchema),
  unsubscribe: TypeCompiler.Compile(UnsubscribeMessageSchema),
  snapshot: TypeCompiler.Compile(SnapshotMessageSchema),
  ping: TypeCompiler.Compile(PingMessageSchema)
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
    return { ok: false, message: 'op must be one of subscribe, unsubscribe, snapshot, ping' }
  }
  const check = checks[op as keyof typeof checks]
  const error = check.Errors(value).First()
  if (error !== undefined) return { ok: false, message: `${error.path || op}: ${error.message}` }
  return { ok: true, message: value as ClientMessage }
}

// ---- Server events

const Common = { ticker: Type.String(), resolution: Type.String() }
const EventId = Type.String({ description: 'stream time in epoch ms; resume with it (since / Last-Event-ID)' })
const AcceptedAt = Type.Optional(Type.Integer({ description: 'when the batch that caused it was accepted, epoch ms' }))

/** Server events (WebSocket: these objects; SSE: `event:` = type, `data:` = the rest). */
export const ServerEvents = {
  partial_bucket: Type.Object({ type: Type.Literal('partial_bucket'), id: EventId, ...Common, bucket: BucketSchema, progress_pct: Type.Number(), accepted_at: AcceptedAt }),
  bucket_update: Type.Object({ type: Type.Literal('bucket_update'), id: EventId, ...Common, bucket: BucketSchema, accepted_at: AcceptedAt }),
  heartbeat: Type.Object({ type: Type.Literal('heartbeat'), timestamp: Type.String(), connections: Type.Integer() }),
  subscribed: Type.Object({
    type: Type.Literal('subscribed'),
    op: Type.Union([Type.Literal('subscribe'), Type.Literal('unsubscribe')]),
    tickers: Type.Array(Type.String()),
    resolutions: Type.Array(Type.String()),
    subscriptions: Type.Integer({ description: 'series this client now watches' }),
    replayed: Type.Optional(Type.Integer({ description: 'buckets queued for a resume' }))
  }),
  snapshot: Type.Intersect([Type.Object({ type: Type.Literal('snapshot'), id: Type.String() }), TimeseriesResponseSchema]),
  pong: Type.Object({ type: Type.Literal('pong'), timestamp: Type.String() }),
  error: Type.Object({ type: Type.Literal('error'), code: Type.String(), message: Type.String(), id: Type.Optional(Type.String()) })
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
  /** SSE block: `id:`, `event:`, `data:` and the blank line, UTF-8 encoded. */
  readonly sse: Buffer
  /**
   * The complete WebSocket frame (header and payload) of `wsBytes`, built on first use by
   * an engine that writes frames to its sockets itself.
   */
  wsFrame?: Buffer
  /** The series of a bucket event: every client it goes to watches it (uWS publishes on it). */
  topic?: SeriesKey
}

/** Encodes one event for both transports; `id` is left out when undefined. */
export function renderEvent (type: string, payload: Record<string, unknown>, id?: string): Rendered {
  const data = JSON.stringify(payload)
  const head = id === undefined ? `{"type":"${type}"` : `{"type":"${type}","id":"${id}"`
  const ws = data === '{}' ? `${head}}` : `${head},${data.slice(1)}`
  return {
    ws,
    wsBytes: Buffer.from(ws),
    sse: Buffer.from(`${id === undefined ? '' : `id: ${id}\n`}event: ${type}\ndata: ${data}\n\n`)
  }
}

/** The gateway heartbeat event. */
export function renderHeartbeat (now: number, connections: number): Rendered {
  return renderEvent('heartbeat', { timestamp: toIsoSecond(now), connections })
}

// ---- Event ids and resume

/**
 * How far before a resume id the gateway replays. Events of different buckets can reach a
 * client out of `last_updated` order (pub/sub per channel, debounce per bucket), so a
 * client's last id does not prove it saw everything older; replaying a state it already
 * holds is harmless because clients keep the higher `rev`.
 */
export const RESUME_GRACE_MS = 10_000

/**
 * The stream time of a bucket state: its `last_updated` (set by the hot state, from the
 * Redis server clock in cluster mode, so every gateway agrees), or its end once it is
 * complete and the change is its completion. Event ids are this time in epoch ms, so they
 * compare across gateways.
 */
export function streamTime (bucket: Bucket, kind: BucketEvent['kind'] | 'resume', now: number): number {
  const end = bucketEnd(bucket.start, bucket.resolution)
  if (kind === 'final' || (kind === 'resume' && end <= now)) return Math.max(bucket.last_updated, end)
  return bucket.last_updated
}

/** The wire id of a stream time. */
export function formatEventId (time: number): string {
  return String(time)
}

/** Reads a resume id (`Last-Event-ID`, `since`); undefined when it is not one of ours. */
export function parseEventId (text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,16}$/.test(text.trim())) return undefined
  const time = Number(text.trim())
  return Number.isSafeInteger(time) ? time : undefined
}

/** True when a bucket belongs in the replay for a client resuming from `since`. */
export function isAfterResumePoint (bucket: Bucket, since: number, now: number): boolean {
  return streamTime(bucket, 'resume', now) >= since - RESUME_GRACE_MS
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
    this.series = seriesKey(bucket.ticker, bucket.resolution)
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
    this.#rendered.topic = this.series
    this.#renderedAt = now
    return this.#rendered
  }
}

// ---- Selection of series

/** A rejected selection: a catalogue code and a message naming the culprit. */
export interface SelectionError {
  code: ErrorCode
  message: string
}

/** Tickers × resolutions, checked against the configured tickers and the resolutions. */
export function selectSeries (tickers: readonly string[], resolutions: readonly string[], known: ReadonlySet<string>): SeriesKey[] | SelectionError {
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

/**
 * The resume replay: every bucket of `series` whose stream time is at or after the resume
 * point (less the grace window), read from the L1 cache. Call it after joining the
 * channels, so nothing that changes during the read is missed; a state that arrives both
 * ways is deduplicated by the connection, newest `rev` winning.
 */
export async function replaySince (cache: SeriesCache, series: readonly SeriesKey[], since: number, now: number): Promise<StreamEvent[]> {
  const events: StreamEvent[] = []
  await Promise.all(series.map(async (key) => {
    const parsed = parseSeriesKey(key)
    if (parsed === undefined) return
    const view = await cache.read(parsed.ticker, parsed.resolution)
    for (const bucket of view.buckets) {
      if (isAfterResumePoint(bucket, since, now)) events.push(new StreamEvent(bucket, 'resume', now))
    }
  }))
  // Event ids rise through the replay, so the last one a client sees is its resume point.
  return events.sort((a, b) => a.time - b.time)
}

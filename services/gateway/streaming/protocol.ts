import { type Static, Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { BucketSchema, TimeseriesResponseSchema } from '../schemas.js'

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

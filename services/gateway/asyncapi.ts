/**
 * The AsyncAPI 3 document of Pulse's streaming protocols (WebSocket `/api/v2/ws`, SSE
 * `/api/v2/stream`), built from the same TypeBox schemas the gateway validates client
 * messages with and renders server events from, so the document cannot drift from the
 * code. It describes a gateway: it receives client messages and sends events. Served at
 * `/docs/asyncapi.json`.
 */
import { type TObject, type TSchema, Type } from '@sinclair/typebox'
import { ERRORS } from '../../shared/errors.js'
import { RESOLUTIONS } from '../../shared/timeseries/resolutions.js'
import {
  ClientMessageSchema, PingMessageSchema, RefreshMessageSchema, ServerEvents, SnapshotMessageSchema, SubscribeMessageSchema, UnsubscribeMessageSchema
} from './streaming/protocol.js'

/** Client messages by `op`, as the WebSocket accepts them. */
export const CLIENT_MESSAGES: Record<string, TObject> = {
  subscribe: SubscribeMessageSchema,
  unsubscribe: UnsubscribeMessageSchema,
  snapshot: SnapshotMessageSchema,
  ping: PingMessageSchema,
  refresh: RefreshMessageSchema
}

/** Server events that SSE carries too; the others answer WebSocket client messages. */
export const SSE_EVENTS = ['partial_bucket', 'bucket_update', 'heartbeat'] as const satisfies ReadonlyArray<keyof typeof ServerEvents>

const EVENT_SUMMARIES: Record<keyof typeof ServerEvents, string> = {
  partial_bucket: 'The bucket containing now changed.',
  bucket_update: 'A bucket completed, or a past bucket changed through late data.',
  bucket_delta: 'With ?encoding=delta (the SDK asks for it): a partial_bucket or bucket_update as the fields that changed since the state of that bucket this connection received last (rev b), which the client holds; apply it to that state (fields left out are unchanged; avg = sum / count; pp present means partial, with next_update_at the bucket end). The gateway sends one only against the last state of the bucket it sent this connection, and both ends remember the last state of the 1024 buckets received most recently; resume replays and snapshots are always full.',
  heartbeat: 'Sent every HEARTBEAT_MS (default 15 s).',
  subscribed: 'Reply to subscribe and unsubscribe; a resuming subscribe says how many bucket states it replays and which series it could not continue (not_recovered: take a fresh snapshot of each and replace what is held).',
  resumed: 'Event stream only, first when Last-Event-ID was given: how many states are replayed, and which series could not be continued (their whole window follows: replace what is held).',
  snapshot: 'Reply to snapshot: the history response of GET /api/v2/timeseries.',
  pong: 'Reply to ping.',
  refreshed: 'Reply to refresh: the new token is in force until expires_at; dropped lists series it no longer covers (each also gets an error).',
  error: `A message was refused; the connection stays open unless the client floods. code is a PULSE_ERR_* code (${Object.keys(ERRORS).length} in all, see docs/api.md).`
}

const CLIENT_SUMMARIES: Record<string, string> = {
  subscribe: 'Watch tickers × resolutions; with positions (per ticker#resolution, the id of the last event or snapshot held), first receive exactly the bucket states after each position, or learn the series was not recovered.',
  unsubscribe: 'Stop watching tickers × resolutions.',
  snapshot: 'Ask for history of one series; answered by a snapshot event with the same id.',
  ping: 'Answered by pong.',
  refresh: 'Replace the connection\'s JWT before its exp (else the gateway closes with 4001); answered by refreshed, or an error that leaves the old token in force.'
}

/** A TypeBox schema as plain JSON Schema (TypeBox keeps its own markers in symbol keys). */
function jsonSchema (schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>
}

/** An SSE event's `data:`: the event without `type` (the `event:` line) and `id` (the `id:` line). */
function sseData (schema: TSchema): TSchema {
  return Type.Omit(schema, ['type', 'id'])
}

const ref = (path: string): { $ref: string } => ({ $ref: path })

/** Builds the document; `host` (e.g. `localhost:3000`) names the server it describes. */
export function asyncApiDocument (host = 'localhost:3000'): Record<string, unknown> {
  const wsEvents = Object.keys(ServerEvents) as Array<keyof typeof ServerEvents>
  const messages: Record<string, unknown> = {}
  for (const [op, schema] of Object.entries(CLIENT_MESSAGES)) {
    messages[`client_${op}`] = { name: op, title: `${op} (client → gateway)`, summary: CLIENT_SUMMARIES[op], contentType: 'application/json', payload: jsonSchema(schema) }
  }
  for (const type of wsEvents) {
    messages[`ws_${type}`] = { name: type, title: `${type} (WebSocket)`, summary: EVENT_SUMMARIES[type], contentType: 'application/json', payload: jsonSchema(ServerEvents[type]) }
  }
  for (const type of SSE_EVENTS) {
    messages[`sse_${type}`] = {
      name: type,
      title: `${type} (SSE)`,
      summary: `${EVENT_SUMMARIES[type]} The SSE event name is ${type}; data is this JSON${type === 'heartbeat' ? '' : ', and the id: line carries the event id'}.`,
      contentType: 'application/json',
      payload: jsonSchema(sseData(ServerEvents[type]))
    }
  }
  const channelMessages = (keys: string[]): Record<string, unknown> => Object.fromEntries(keys.map((k) => [k, ref(`#/components/messages/${k}`)]))
  const clientKeys = Object.keys(CLIENT_MESSAGES).map((op) => `client_${op}`)
  const wsKeys = wsEvents.map((type) => `ws_${type}`)
  const sseKeys = SSE_EVENTS.map((type) => `sse_${type}`)
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Pulse streams',
      version: '2',
      description: 'Live news-sentiment buckets over WebSocket and Server-Sent Events. The same bucket events travel on both; ' +
        `resolutions are ${RESOLUTIONS.join(', ')}. Per client and bucket at most one event per DEBOUNCE_MS, always the newest state; ` +
        'clients keep the higher rev of a bucket. The HTTP API is described by the OpenAPI document at /docs/json.'
    },
    defaultContentType: 'application/json',
    servers: {
      websocket: { host, protocol: 'ws', description: 'A gateway (wss behind TLS). With READ_TOKEN set, send Authorization: Bearer or ?token=.' },
      sse: { host, protocol: 'http', description: 'A gateway (https behind TLS). With READ_TOKEN set, send Authorization: Bearer or ?token=.' }
    },
    channels: {
      websocket: {
        address: '/api/v2/ws',
        title: 'WebSocket stream',
        description: 'Every message is one JSON object with type (with ?batch=1, a JSON array of them per flush). ' +
          'Messages over 16 KB close the socket with 1009; at most 200 subscriptions per client; more than 25 messages/s are refused with PULSE_ERR_FLOOD.',
        servers: [ref('#/servers/websocket')],
        messages: channelMessages([...clientKeys, ...wsKeys]),
        bindings: {
          ws: {
            method: 'GET',
            query: {
              type: 'object',
              properties: {
                tickers: { type: 'string', description: 'initial subscription: comma-separated tickers' },
                resolutions: { type: 'string', description: 'initial subscription: comma-separated resolutions' },
                since: { type: 'string', description: 'event id to resume from' },
                token: { type: 'string', description: 'READ_TOKEN, when set' },
                batch: { type: 'string', enum: ['1'], description: '1: a flush is one message holding a JSON array of events' },
                encoding: { type: 'string', enum: ['full', 'delta'], description: 'full (default): bucket events carry the whole bucket; delta: bucket_delta where the client holds the base. Anything else: 400 PULSE_ERR_BAD_ENCODING before the upgrade' }
              }
            }
          }
        }
      },
      sse: {
        address: '/api/v2/stream',
        title: 'Server-Sent Events stream',
        description: 'GET /api/v2/stream?tickers=AAPL,MSFT&resolutions=1m,5m (resolutions default 1m; tickers empty: every configured ticker). ' +
          'The stream starts with retry: 1000 and sends a comment line at least every 15 s. Resume with the Last-Event-ID header or ?lastEventId=.',
        servers: [ref('#/servers/sse')],
        messages: channelMessages(sseKeys)
      }
    },
    operations: {
      receiveClientMessages: {
        action: 'receive',
        title: 'Client messages on the WebSocket',
        channel: ref('#/channels/websocket'),
        messages: clientKeys.map((k) => ref(`#/channels/websocket/messages/${k}`))
      },
      sendWebSocketEvents: {
        action: 'send',
        title: 'Events on the WebSocket',
        channel: ref('#/channels/websocket'),
        messages: wsKeys.map((k) => ref(`#/channels/websocket/messages/${k}`))
      },
      sendSseEvents: {
        action: 'send',
        title: 'Events on the SSE stream',
        channel: ref('#/channels/sse'),
        messages: sseKeys.map((k) => ref(`#/channels/sse/messages/${k}`))
      }
    },
    components: {
      schemas: { ClientMessage: jsonSchema(ClientMessageSchema) },
      messages
    }
  }
}

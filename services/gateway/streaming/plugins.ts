import type { OutgoingHttpHeaders } from 'node:http'
import websocket from '@fastify/websocket'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { RawData, WebSocket } from 'ws'
import { errorBody, ERRORS, PulseError } from '../../../shared/errors.js'
import { isStreamEncoding } from '../../../shared/stream-delta.js'
import { gatewayAccess } from '../access/plugin.js'
import type { Reader } from '../access/reader-auth.js'
import type { StreamAccess } from '../access/stream-access.js'
import { admitReader, entitledSeries, openStreamAccess, reportRefused } from '../access/stream-admission.js'
import { readableTickers } from '../readable-tickers.js'
import { ChannelHub } from './channel-hub.js'
import { nodeSseWriter, sseSink, wsSink } from './node-sinks.js'
import { listParam, MAX_MESSAGE_BYTES, SSE_HEADERS, SSE_PREAMBLE } from './protocol.js'
import { eventStreamResume, eventStreamSeries, startEventStream, type StreamQuery, WsSession } from './session.js'

/*
 * The streaming endpoints of the Fastify engine: the hub (`app.streaming`, which the uWS
 * engine uses too), the admission hook, WebSocket `/api/v2/ws` and SSE `/api/v2/stream`.
 */

declare module 'fastify' {
  interface FastifyInstance {
    /** The streaming core shared by the WebSocket and SSE endpoints of both engines. */
    streaming: ChannelHub
  }
}

async function hubPlugin (app: FastifyInstance): Promise<void> {
  const { config, cache, now, metrics } = app.pulse
  const hub = new ChannelHub({
    cache,
    now,
    maxConnections: config.maxConnections,
    heartbeatMs: config.heartbeatMs,
    debounceMs: config.debounceMs,
    maxBufferedBytes: config.maxBufferedBytes,
    observer: (transport) => metrics?.connectionObserver(transport),
    ...(metrics === undefined ? {} : { onCoalesced: () => metrics.channelCoalesced.inc() }),
    onError: (err, series) => app.log.warn({ err, series }, 'channel subscription failed')
  })
  app.decorate('streaming', hub)
  // Before the server stops accepting: clients are told to reconnect while it still can.
  app.addHook('preClose', async () => hub.shutdown())
}

/** Creates `app.streaming`, the channel hub; the WS and SSE plugins register it when missing. */
export const streamingHub = fp(hubPlugin, { name: 'pulse-streaming-hub', fastify: '5.x' })

const releases = new WeakMap<FastifyRequest, () => void>()
const readers = new WeakMap<FastifyRequest, Reader>()

/** Checks access and takes a connection slot before the upgrade or stream; answers 401/403/429/503 otherwise. */
function admitStream (app: FastifyInstance, websocketUpgrade: boolean) {
  const { config } = app.pulse
  return async (request: FastifyRequest<{ Querystring: { token?: string, ticket?: string } }>, reply: FastifyReply): Promise<void> => {
    let reader: Reader
    try {
      reader = await admitReader(app.access, { authorization: request.headers.authorization, queryToken: request.query.token, ticket: request.query.ticket }, request.ip)
    } catch (err) {
      if (!(err instanceof PulseError)) throw err
      await reply.code(err.status).send(errorBody(err.code, err.message))
      return
    }
    readers.set(request, reader)
    // The credential is checked above; the hub checks the Origin and takes a slot.
    const admitted = app.streaming.admit({
      authorization: undefined,
      origin: request.headers.origin,
      queryToken: undefined
    }, undefined, config.allowedOrigins, websocketUpgrade)
    if ('code' in admitted) {
      const status = admitted.code === 'PULSE_ERR_UNAUTHORIZED' ? 401 : admitted.code === 'PULSE_ERR_FORBIDDEN_ORIGIN' ? 403 : 503
      await reply.code(status).headers(admitted.headers).send(errorBody(admitted.code))
      return
    }
    // The slot is held by the TCP connection, so it comes back however the stream ends.
    request.raw.socket.once('close', admitted.release)
    releases.set(request, admitted.release)
  }
}

/** The reader `admitStream` authenticated for this request. */
function readerOf (request: FastifyRequest): Reader {
  const reader = readers.get(request)
  if (reader === undefined) throw new PulseError('PULSE_ERR_UNAUTHORIZED')
  return reader
}

/** The slot `admitStream` took for this request. */
function releaseOf (request: FastifyRequest): () => void {
  return releases.get(request) ?? (() => {})
}

function queryOf (query: Record<string, string | undefined>): StreamQuery {
  return (name) => query[name]
}

interface WsQuery {
  tickers?: string
  resolutions?: string
  token?: string
  ticket?: string
  batch?: string
  encoding?: string
}

/**
 * Refuses a WebSocket upgrade whose `encoding` is not `full` or `delta`
 * (400 `PULSE_ERR_BAD_ENCODING`), before anything else is checked or taken.
 */
async function checkEncoding (request: FastifyRequest<{ Querystring: WsQuery }>, reply: FastifyReply): Promise<void> {
  const encoding = request.query.encoding
  if (encoding === undefined || isStreamEncoding(encoding)) return
  await reply.code(400).send(errorBody('PULSE_ERR_BAD_ENCODING', `encoding ${JSON.stringify(encoding.slice(0, 16))}: ${ERRORS.PULSE_ERR_BAD_ENCODING.message}`))
}

function text (data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8')
  return Buffer.from(data as ArrayBuffer).toString('utf8')
}

async function wsPlugin (app: FastifyInstance): Promise<void> {
  if (!app.hasDecorator('streaming')) await app.register(streamingHub)
  if (!app.hasDecorator('access')) await app.register(gatewayAccess)
  const hub = app.streaming
  const known = readableTickers(app.pulse.tickers, app.pulse.now)

  await app.register(websocket, {
    options: { maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false },
    preClose: function (this: FastifyInstance, done: () => void) {
      hub.shutdown()
      this.websocketServer.close()
      done()
    }
  })

  app.get<{ Querystring: WsQuery }>('/api/v2/ws', {
    websocket: true,
    onRequest: checkEncoding,
    preValidation: admitStream(app, true),
    schema: {
      summary: 'WebSocket stream of bucket events (SPEC §4)',
      tags: ['streaming'],
      querystring: Type.Object({
        tickers: Type.Optional(Type.String({ description: 'initial subscription: comma-separated tickers' })),
        resolutions: Type.Optional(Type.String({ description: 'initial subscription: comma-separated resolutions' })),
        token: Type.Optional(Type.String({ description: 'READ_TOKEN or a JWT, where Authorization cannot be set' })),
        ticket: Type.Optional(Type.String({ description: 'a stream ticket from POST /api/v2/stream/tickets' })),
        batch: Type.Optional(Type.String({ description: '1: events ready together are one message holding a JSON array of them' })),
        encoding: Type.Optional(Type.String({ description: '`full` (default): every bucket event is the whole bucket; `delta`: a bucket state the client holds the previous state of comes as a `bucket_delta` (the SDK asks for it)' }))
      })
    }
  }, (socket: WebSocket, request) => {
    const release = releaseOf(request)
    const log = request.log.child({ conn: request.id })
    const opened: { access?: StreamAccess } = {}
    const actor = hub.open(wsSink(socket, request.query.batch === '1'), 'ws', (closed) => {
      release()
      opened.access?.close()
      log.debug({ sent: closed.sent }, 'websocket closed')
    }, request.query.encoding === 'delta' ? 'delta' : 'full')
    log.debug('websocket opened')
    const session = new WsSession(actor, hub, app.pulse, known, opened.access = openStreamAccess(app.access, readerOf(request), actor, app.pulse.now, request.ip))
    socket.on('message', (data, isBinary) => session.handle(isBinary ? '' : text(data)))
    socket.on('close', () => actor.onSocketClosed())
    socket.on('error', () => actor.onSocketClosed())
    session.subscribeFromQuery(queryOf(request.query as Record<string, string | undefined>), (err) => log.warn({ err }, 'initial subscription failed'))
  })
}

/** `GET /api/v2/ws`: the WebSocket endpoint (SPEC §4). */
export const wsStream = fp(wsPlugin, { name: 'pulse-ws', fastify: '5.x' })

interface SseQuery {
  tickers?: string
  resolutions?: string
  lastEventId?: string
  token?: string
  ticket?: string
}

async function ssePlugin (app: FastifyInstance): Promise<void> {
  if (!app.hasDecorator('streaming')) await app.register(streamingHub)
  if (!app.hasDecorator('access')) await app.register(gatewayAccess)
  const hub = app.streaming
  const known = readableTickers(app.pulse.tickers, app.pulse.now)

  app.get<{ Querystring: SseQuery }>('/api/v2/stream', {
    // Parameters are checked in the handler so each problem gets its catalogue code.
    validatorCompiler: () => (value: unknown) => ({ value }),
    schema: {
      summary: 'Server-Sent Events stream of bucket events (SPEC §4)',
      tags: ['streaming'],
      querystring: Type.Object({
        resolutions: Type.Optional(Type.String({ description: 'comma-separated; default 1m' })),
        tickers: Type.Optional(Type.String({ description: 'comma-separated; empty: every configured ticker' })),
        lastEventId: Type.Optional(Type.String({ description: 'the resume token (the id of the last event received) when the Last-Event-ID header cannot be set' })),
        token: Type.Optional(Type.String({ description: 'READ_TOKEN, for EventSource' })),
        ticket: Type.Optional(Type.String({ description: 'a single-use stream ticket from POST /api/v2/stream/tickets, for EventSource' }))
      })
    },
    // Validate the selection before taking a connection slot.
    onRequest: async (request) => {
      const series = eventStreamSeries(queryOf(request.query as SseQuery as Record<string, string | undefined>), app.pulse.tickers.current().active, known)
      if (!Array.isArray(series)) throw new PulseError(series.code, series.message)
    },
    preValidation: admitStream(app, false)
  }, async (request, reply) => {
    const query = queryOf(request.query as Record<string, string | undefined>)
    const selected = eventStreamSeries(query, app.pulse.tickers.current().active, known)
    if (!Array.isArray(selected)) throw new PulseError(selected.code, selected.message)
    const reader = readerOf(request)
    // Without tickers an event stream carries every ticker: for a JWT, every entitled one.
    const asked = listParam(query('tickers')).length === 0 ? reader.entitlement.split(selected).allowed : selected
    const { allowed: series, denied } = entitledSeries(reader, asked.length === 0 ? selected : asked)
    const header = request.headers['last-event-id']
    const from = eventStreamResume(typeof header === 'string' ? header : undefined, query, series)
    const release = releaseOf(request)
    const log = request.log.child({ conn: request.id })

    // Headers set by the app's hooks (CORS, helmet) so far live on the reply; a hijacked
    // reply would drop them, so they are written with the stream's own.
    const headers: OutgoingHttpHeaders = {}
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) headers[name] = typeof value === 'number' ? String(value) : value
    }
    Object.assign(headers, SSE_HEADERS)
    reply.hijack()
    const res = reply.raw
    request.raw.socket.setTimeout(0)
    res.writeHead(200, headers)
    res.write(SSE_PREAMBLE)
    const opened: { access?: StreamAccess } = {}
    const actor = hub.open(sseSink(nodeSseWriter(res), from.token), 'sse', (closed) => {
      release()
      opened.access?.close()
      log.debug({ sent: closed.sent }, 'event stream closed')
    })
    log.debug('event stream opened')
    opened.access = openStreamAccess(app.access, reader, actor, app.pulse.now, request.ip)
    res.on('close', () => actor.onSocketClosed())
    reportRefused(actor, denied)
    await startEventStream(hub, app.pulse, actor, series, from)
  })
}

/** `GET /api/v2/stream`: the Server-Sent Events endpoint (SPEC §4). */
export const sseStream = fp(ssePlugin, { name: 'pulse-sse', fastify: '5.x' })

import type { OutgoingHttpHeaders } from 'node:http'
import websocket from '@fastify/websocket'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { RawData, WebSocket } from 'ws'
import { errorBody, PulseError } from '../../../shared/errors.js'
import { SecretSet } from '../plugins/auth.js'
import { ChannelHub } from './channel-hub.js'
import { nodeSseWriter, sseSink, wsSink } from './connection.js'
import { MAX_MESSAGE_BYTES, SSE_HEADERS, SSE_PREAMBLE } from './protocol.js'
import { eventStreamResumePoint, eventStreamSeries, startEventStream, type StreamQuery, WsSession } from './session.js'

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

/** Checks access and takes a connection slot before the upgrade or stream; answers 401/403/503 otherwise. */
function admitStream (app: FastifyInstance, websocketUpgrade: boolean) {
  const { config } = app.pulse
  const readToken = config.readToken === undefined ? undefined : new SecretSet([config.readToken])
  return async (request: FastifyRequest<{ Querystring: { token?: string } }>, reply: FastifyReply): Promise<void> => {
    const admitted = app.streaming.admit({
      authorization: request.headers.authorization,
      origin: request.headers.origin,
      queryToken: request.query.token
    }, readToken, config.allowedOrigins, websocketUpgrade)
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
  since?: string
  token?: string
  batch?: string
}

function text (data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8')
  return Buffer.from(data as ArrayBuffer).toString('utf8')
}

async function wsPlugin (app: FastifyInstance): Promise<void> {
  if (!app.hasDecorator('streaming')) await app.register(streamingHub)
  const hub = app.streaming
  const known = new Set(app.pulse.config.tickers)

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
    preValidation: admitStream(app, true),
    schema: {
      summary: 'WebSocket stream of bucket events (SPEC §4)',
      tags: ['streaming'],
      querystring: Type.Object({
        tickers: Type.Optional(Type.String({ description: 'initial subscription: comma-separated tickers' })),
        resolutions: Type.Optional(Type.String({ description: 'initial subscription: comma-separated resolutions' })),
        since: Type.Optional(Type.String({ description: 'event id to resume from' })),
        token: Type.Optional(Type.String()),
        batch: Type.Optional(Type.String({ description: '1: events ready together are one message holding a JSON array of them' }))
      })
    }
  }, (socket: WebSocket, request) => {
    const release = releaseOf(request)
    const log = request.log.child({ conn: request.id })
    const actor = hub.open(wsSink(socket, request.query.batch === '1'), 'ws', (closed) => {
      release()
      log.debug({ sent: closed.sent }, 'websocket closed')
    })
    log.debug('websocket opened')
    const session = new WsSession(actor, hub, app.pulse, known)
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
}

async function ssePlugin (app: FastifyInstance): Promise<void> {
  if (!app.hasDecorator('streaming')) await app.register(streamingHub)
  const { config } = app.pulse
  const hub = app.streaming
  const known = new Set(config.tickers)

  app.get<{ Querystring: SseQuery }>('/api/v2/stream', {
    // Parameters are checked in the handler so each problem gets its catalogue code.
    validatorCompiler: () => (value: unknown) => ({ value }),
    schema: {
      summary: 'Server-Sent Events stream of bucket events (SPEC §4)',
      tags: ['streaming'],
      querystring: Type.Object({
        resolutions: Type.Optional(Type.String({ description: 'comma-separated; default 1m' })),
        tickers: Type.Optional(Type.String({ description: 'comma-separated; empty: every configured ticker' })),
        lastEventId: Type.Optional(Type.String({ description: 'resume point when the Last-Event-ID header cannot be set' })),
        token: Type.Optional(Type.String({ description: 'READ_TOKEN, for EventSource' }))
      })
    },
    // Validate the selection before taking a connection slot.
    onRequest: async (request) => {
      const series = eventStreamSeries(queryOf(request.query as SseQuery as Record<string, string | undefined>), config.tickers, known)
      if (!Array.isArray(series)) throw new PulseError(series.code, series.message)
    },
    preValidation: admitStream(app, false)
  }, async (request, reply) => {
    const query = queryOf(request.query as Record<string, string | undefined>)
    const series = eventStreamSeries(query, config.tickers, known)
    if (!Array.isArray(series)) throw new PulseError(series.code, series.message)
    const header = request.headers['last-event-id']
    const since = eventStreamResumePoint(typeof header === 'string' ? header : undefined, query)
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
    const actor = hub.open(sseSink(nodeSseWriter(res)), 'sse', (closed) => {
      release()
      log.debug({ sent: closed.sent }, 'event stream closed')
    })
    log.debug('event stream opened')
    res.on('close', () => actor.onSocketClosed())
    await startEventStream(hub, app.pulse, actor, series, since)
  })
}

/** `GET /api/v2/stream`: the Server-Sent Events endpoint (SPEC §4). */
export const sseStream = fp(ssePlugin, { name: 'pulse-sse', fastify: '5.x' })

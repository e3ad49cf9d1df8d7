import type { FastifyInstance } from 'fastify'
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, WebSocketBehavior } from 'uWebSockets.js'
import { type ErrorCode, ERRORS, PulseError } from '../../../shared/errors.js'
import { isStreamEncoding } from '../../../shared/stream-delta.js'
import type { SeriesKey } from '../../../shared/timeseries/keys.js'
import type { Reader } from '../access/reader-auth.js'
import type { StreamAccess } from '../access/stream-access.js'
import { admitReader, entitledSeries, openStreamAccess, reportRefused } from '../access/stream-admission.js'
import { readableTickers, type TickerLookup } from '../readable-tickers.js'
import type { ChannelHub } from '../streaming/channel-hub.js'
import type { ConnectionActor, Sink } from '../streaming/connection-actor.js'
import { sseSink, type SseWriter } from '../streaming/node-sinks.js'
import { CLOSE_GRACE_MS, CLOSE_TEXT, CloseCode, deltaTopic, listParam, MAX_MESSAGE_BYTES, type Rendered, SSE_HEADERS, SSE_PREAMBLE } from '../streaming/protocol.js'
import { eventStreamResume, eventStreamSeries, startEventStream, type StreamQuery, WsSession } from '../streaming/session.js'
import uWS from './native.js'
import { type EdgeRequest, readRequest, sendError, statusLine } from './request.js'

/*
 * The streams the uWS edge serves itself, WebSocket `/api/v2/ws` and SSE `/api/v2/stream`:
 * the same hub, admission, session logic and sending rule as the Fastify engine, with
 * sinks that write to uWS sockets.
 */

/** What the uWS stream routes share: the Fastify app's hub and settings. */
export interface EdgeContext {
  app: FastifyInstance
  hub: ChannelHub
  /** Readable tickers (the registry's active ones, and retired ones with history retained). */
  known: TickerLookup
}

/** The edge context of an app whose streaming hub is registered. */
export function edgeContext (app: FastifyInstance): EdgeContext {
  return {
    app,
    hub: app.streaming,
    known: readableTickers(app.pulse.tickers, app.pulse.now)
  }
}

/** A stream refused before it starts. */
interface EdgeRefusal {
  code: ErrorCode
  message?: string
  headers: Record<string, string>
}

/**
 * The admission of the Fastify engine, on an edge request: the reader (token, ticket;
 * asynchronous, since a JWKS may have to be fetched), the Origin, then a connection slot.
 */
async function admit (context: EdgeContext, request: EdgeRequest, websocket: boolean): Promise<{ release: () => void, reader: Reader } | EdgeRefusal> {
  let reader: Reader
  try {
    reader = await admitReader(context.app.access, {
      authorization: request.headers.authorization,
      queryToken: request.query.get('token') ?? undefined,
      ticket: request.query.get('ticket') ?? undefined
    }, request.remoteAddress)
  } catch (err) {
    if (err instanceof PulseError) return { code: err.code, message: err.message, headers: {} }
    throw err
  }
  const admitted = context.hub.admit({ authorization: undefined, origin: request.headers.origin, queryToken: undefined }, undefined, context.app.pulse.config.allowedOrigins, websocket)
  return 'code' in admitted ? admitted : { release: admitted.release, reader }
}

function queryOf (request: EdgeRequest): StreamQuery {
  return (name) => request.query.get(name) ?? undefined
}

// ---- WebSocket

/**
 * Frames up to this size are read and then refused with 1009, as the Fastify engine does;
 * uWS drops larger ones without a close code, before buffering them.
 */
const MAX_FRAME_BYTES = 256 * 1024

/**
 * uWS drops messages beyond this backlog; the connection actor stops writing long before
 * (64 KB, or 4 MB of replies), so it is only a backstop that never drops an event.
 */
const MAX_BACKPRESSURE_BYTES = 16 * 1024 * 1024

/** Per-socket state: uWS throws on any call to a closed socket, so the sink checks it first. */
interface Connection {
  closed: boolean
  /** Bytes handed to the topic fan-out and not yet written: part of the socket's backlog. */
  deferred: number
  request: EdgeRequest
  release: () => void
  reader: Reader
  actor?: ConnectionActor
  session?: WsSession
  access?: StreamAccess
}

/** Closes a uWS socket with `code`, dropping it if the close handshake stalls. */
function endWebSocket (socket: WebSocket<Connection>, code: number, text: string): void {
  const state = socket.getUserData()
  if (state.closed) return
  socket.end(code, text)
  setTimeout(() => { if (!state.closed) socket.close() }, CLOSE_GRACE_MS).unref()
}

/**
 * uWS's native topic publish for the common case: when every watcher of a series takes an
 * event at the same moment (the channel hands it to all of them; none holds it back under
 * backpressure), the event is published once on the series' topic and uWS writes it to
 * each subscriber itself. The sockets that want an event are collected during the tick;
 * at its end, if they are all of the topic's subscribers the event is published,
 * otherwise sent to each of them.
 */
class TopicFanOut {
  readonly #server: TemplatedApp
  readonly #batches = new Map<Rendered, Array<WebSocket<Connection>>>()
  #last: Rendered | undefined
  #lastSockets: Array<WebSocket<Connection>> = []

  constructor (server: TemplatedApp) {
    this.#server = server
  }

  send (socket: WebSocket<Connection>, event: Rendered): void {
    if (event !== this.#last) {
      if (this.#batches.size === 0) process.nextTick(() => this.#flush())
      let sockets = this.#batches.get(event)
      if (sockets === undefined) this.#batches.set(event, sockets = [])
      this.#last = event
      this.#lastSockets = sockets
    }
    this.#lastSockets.push(socket)
    socket.getUserData().deferred += event.wsBytes.length
  }

  #flush (): void {
    for (const [event, sockets] of this.#batches) {
      for (const socket of sockets) socket.getUserData().deferred = 0
      const topic = event.delta === true ? deltaTopic(event.topic as SeriesKey) : event.topic as string
      if (sockets.length === this.#server.numSubscribers(topic)) {
        this.#server.publish(topic, event.wsBytes, false)
        continue
      }
      for (const socket of sockets) if (!socket.getUserData().closed) socket.send(event.wsBytes, false)
    }
    this.#batches.clear()
    this.#last = undefined
    this.#lastSockets = []
  }
}

/**
 * A sink on a uWebSockets.js socket. A bucket event goes through the topic fan-out;
 * events ready together are corked, so they leave in one write. `getBufferedAmount()` is
 * uWS's own backpressure buffer, which the connection actor watches exactly as it watches
 * `ws`'s `bufferedAmount`. With `batch`, events ready together are a single message
 * holding a JSON array of them (and clients that ask for it take no topic). A delta
 * connection subscribes to the series' delta topic instead: its deltas may be published,
 * and the full states it takes (of buckets it holds no base of) are sent to it alone.
 */
function uwsWsSink (socket: WebSocket<Connection>, batch: boolean, delta: boolean, topics: TopicFanOut): Sink {
  const state = socket.getUserData()
  return {
    writeOne (event: Rendered): void {
      if (state.closed) return
      if (event.topic !== undefined && !batch && (event.delta === true) === delta) topics.send(socket, event)
      else socket.send(event.wsBytes, false)
    },
    watching (series, watching): void {
      if (state.closed || batch) return
      const topic = delta ? deltaTopic(series) : series
      if (watching) socket.subscribe(topic)
      else socket.unsubscribe(topic)
    },
    write (events: readonly Rendered[]): void {
      if (state.closed) return
      if (batch) {
        socket.send(`[${events.map((e) => e.ws).join(',')}]`, false)
        return
      }
      socket.cork(() => {
        for (const event of events) socket.send(event.wsBytes, false)
      })
    },
    bufferedAmount: () => state.closed ? 0 : socket.getBufferedAmount() + state.deferred,
    keepAlive: () => {},
    close: (reason) => endWebSocket(socket, CloseCode[reason], CLOSE_TEXT[reason])
  }
}

/**
 * `GET /api/v2/ws` on uWS: the admission rules run on the upgrade request, then each socket
 * gets a connection actor and the engine-independent {@link WsSession}; uWS's `drain`
 * lets the actor resume as soon as backpressure clears.
 */
export function wsBehavior (context: EdgeContext, server: TemplatedApp): WebSocketBehavior<Connection> {
  const { app, hub, known } = context
  const topics = new TopicFanOut(server)
  return {
    maxPayloadLength: MAX_FRAME_BYTES,
    maxBackpressure: MAX_BACKPRESSURE_BYTES,
    compression: uWS.DISABLED,
    upgrade: (res, req, socketContext) => {
      const request = readRequest(res, req)
      const encoding = request.query.get('encoding')
      if (encoding !== null && !isStreamEncoding(encoding)) return sendError(res, 'PULSE_ERR_BAD_ENCODING', `encoding ${JSON.stringify(encoding.slice(0, 16))}: ${ERRORS.PULSE_ERR_BAD_ENCODING.message}`)
      // uWS frees the request when this handler returns: the handshake headers are copied now.
      const key = req.getHeader('sec-websocket-key')
      const protocol = req.getHeader('sec-websocket-protocol')
      const extensions = req.getHeader('sec-websocket-extensions')
      let aborted = false
      res.onAborted(() => { aborted = true })
      admit(context, request, true).then((admitted) => {
        if (aborted) {
          if (!('code' in admitted)) admitted.release()
          return
        }
        res.cork(() => {
          if ('code' in admitted) return sendError(res, admitted.code, admitted.message, admitted.headers)
          const connection: Connection = { request, release: admitted.release, reader: admitted.reader, closed: false, deferred: 0 }
          res.upgrade(connection, key, protocol, extensions, socketContext)
        })
      }, (err: unknown) => {
        app.log.warn({ err }, 'websocket admission failed')
        if (!aborted) res.cork(() => sendError(res, 'PULSE_ERR_INTERNAL'))
      })
    },
    open: (socket) => {
      const connection = socket.getUserData()
      const query = queryOf(connection.request)
      const delta = query('encoding') === 'delta'
      const actor = hub.open(uwsWsSink(socket, query('batch') === '1', delta, topics), 'ws', () => {
        connection.release()
        connection.access?.close()
      }, delta ? 'delta' : 'full')
      connection.access = openStreamAccess(app.access, connection.reader, actor, app.pulse.now, connection.request.remoteAddress)
      const session = new WsSession(actor, hub, app.pulse, known, connection.access)
      connection.actor = actor
      connection.session = session
      session.subscribeFromQuery(query, (err) => app.log.warn({ err }, 'initial subscription failed'))
    },
    message: (socket, message, isBinary) => {
      const { session, closed } = socket.getUserData()
      if (closed || session === undefined) return
      if (message.byteLength > MAX_MESSAGE_BYTES) {
        endWebSocket(socket, CloseCode.tooLarge, 'message too big')
        return
      }
      // The ArrayBuffer is only valid during this callback, so it is decoded at once.
      session.handle(isBinary ? '' : Buffer.from(message).toString('utf8'))
    },
    drain: (socket) => socket.getUserData().actor?.drained(),
    close: (socket) => {
      const connection = socket.getUserData()
      connection.closed = true
      connection.actor?.onSocketClosed()
      connection.release()
    }
  }
}

// ---- Server-Sent Events

/** A comment line: harmless to EventSource parsers, used to learn whether the socket drained. */
const PROBE = ':\n\n'

/**
 * An SSE writer on a uWS `HttpResponse`. Every write is corked (uWS asks for that outside
 * its own callbacks). uWS keeps what the kernel does not take and reports only whether
 * its buffer was empty: a write returns false when earlier bytes are still waiting. So the
 * buffered amount is an upper bound: the bytes written since the buffer was last known
 * empty. When uWS says the socket is writable again, a two-byte comment probes whether
 * the buffer drained, and `onDrained` is called when it has.
 */
function uwsSseWriter (res: HttpResponse, isOpen: () => boolean, onDrained: () => void): SseWriter {
  let buffered = 0
  let last = 0
  let ended = false
  const write = (chunk: Buffer | string): void => {
    if (ended || !isOpen()) return
    let drained = true
    res.cork(() => { drained = res.write(chunk) })
    // A false return means the bytes before this chunk are still queued, with this one behind them.
    buffered = drained ? 0 : buffered + last + chunk.length
    last = drained ? chunk.length : 0
  }
  res.onWritable(() => {
    if (buffered > 0) {
      setImmediate(() => {
        write(PROBE)
        if (buffered === 0) onDrained()
      })
    }
    return true
  })
  return {
    write,
    end: () => {
      if (ended || !isOpen()) return
      ended = true
      res.cork(() => res.end())
    },
    destroy: () => {
      if (ended || !isOpen()) return
      ended = true
      res.close()
    },
    bufferedAmount: () => buffered
  }
}

/** Response headers uWS writes itself, or that belong to the probed response rather than a stream. */
const NOT_STREAM_HEADERS = new Set(['content-type', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date', 'cache-control', 'etag', 'last-modified'])

/**
 * The headers the Fastify app adds to every response for this request (CORS from
 * `ALLOWED_ORIGINS`, helmet's security headers), learnt by running the request's origin
 * through the app's hooks on `/healthz`, so the rules stay in one place.
 */
async function appHeaders (app: FastifyInstance, request: EdgeRequest): Promise<Array<[string, string]>> {
  const origin = request.headers.origin
  const probe = await app.inject({ method: 'GET', url: '/healthz', headers: origin === undefined ? {} : { origin }, remoteAddress: request.remoteAddress })
  const headers: Array<[string, string]> = []
  for (const [name, value] of Object.entries(probe.headers)) {
    if (value === undefined || NOT_STREAM_HEADERS.has(name) || name.startsWith('x-ratelimit')) continue
    for (const one of Array.isArray(value) ? value : [value]) headers.push([name, String(one)])
  }
  return headers
}

/**
 * `GET /api/v2/stream` on uWS: the checks and order of the Fastify route (selection 400/404
 * first, then access and the connection slot), the app's CORS and security headers, then
 * a connection actor writing through `sseSink`.
 */
export function sseRoute (context: EdgeContext): (res: HttpResponse, req: HttpRequest) => void {
  const { app, hub, known } = context
  return (res, req) => {
    const request = readRequest(res, req)
    const query = queryOf(request)
    const selected = eventStreamSeries(query, app.pulse.tickers.current().active, known)
    if (!Array.isArray(selected)) return sendError(res, selected.code, selected.message)
    let open = true
    let release: (() => void) | undefined
    let access: StreamAccess | undefined
    res.onAborted(() => {
      open = false
      actor?.onSocketClosed()
      release?.()
    })
    let actor: ConnectionActor | undefined
    const start = async (): Promise<void> => {
      const admitted = await admit(context, request, false)
      if ('code' in admitted) {
        if (open) res.cork(() => sendError(res, admitted.code, admitted.message, admitted.headers))
        return
      }
      release = admitted.release
      if (!open) return release()
      // Without tickers an event stream carries every ticker: for a JWT, every entitled one.
      const reader = admitted.reader
      const asked = listParam(query('tickers')).length === 0 ? reader.entitlement.split(selected).allowed : selected
      let series: SeriesKey[]
      let denied: SeriesKey[]
      try {
        ({ allowed: series, denied } = entitledSeries(reader, asked.length === 0 ? selected : asked))
      } catch (err) {
        release()
        if (!(err instanceof PulseError)) throw err
        res.cork(() => sendError(res, err.code, err.message))
        return
      }
      const headers = await appHeaders(app, request)
      if (!open) return
      const writer = uwsSseWriter(res, () => open, () => actor?.drained())
      res.cork(() => {
        res.writeStatus(statusLine(200))
        for (const [name, value] of headers) res.writeHeader(name, value)
        for (const [name, value] of Object.entries(SSE_HEADERS)) res.writeHeader(name, value)
        res.write(SSE_PREAMBLE)
      })
      const from = eventStreamResume(request.headers['last-event-id'], query, series)
      actor = hub.open(sseSink(writer, from.token), 'sse', () => {
        release?.()
        access?.close()
      })
      access = openStreamAccess(app.access, reader, actor, app.pulse.now, request.remoteAddress)
      reportRefused(actor, denied)
      await startEventStream(hub, app.pulse, actor, series, from)
    }
    start().catch((err: unknown) => {
      app.log.warn({ err }, 'event stream start failed')
      if (open && actor === undefined) {
        release?.()
        res.cork(() => sendError(res, 'PULSE_ERR_INTERNAL'))
      }
    })
  }
}

import type { FastifyInstance } from 'fastify'
import uWS, { type HttpRequest, type HttpResponse, type TemplatedApp, type WebSocket, type WebSocketBehavior } from 'uWebSockets.js'
import { SecretSet } from '../plugins/auth.js'
import type { ChannelHub } from '../streaming/channel-hub.js'
import type { ConnectionActor, Sink, SseWriter } from '../streaming/connection.js'
import { sseSink } from '../streaming/connection.js'
import { CLOSE_GRACE_MS, CLOSE_TEXT, CloseCode, MAX_MESSAGE_BYTES, type Rendered, SSE_HEADERS, SSE_PREAMBLE } from '../streaming/protocol.js'
import { eventStreamResumePoint, eventStreamSeries, startEventStream, type StreamQuery, WsSession } from '../streaming/session.js'
import { type EdgeRequest, readRequest, sendError, statusLine } from './edge.js'

/*
 * The streams the uWS edge serves itself, WebSocket `/api/v2/ws` and SSE `/api/v2/stream`:
 * the same hub, admission, session logic and sending rule as the Fastify engine, with
 * sinks that write to uWS sockets.
 */

/** What the uWS stream routes share: the Fastify app's hub and settings. */
export interface EdgeContext {
  app: FastifyInstance
  hub: ChannelHub
  /** Configured tickers. */
  known: ReadonlySet<string>
  readToken: SecretSet | undefined
}

/** The edge context of an app whose streaming hub is registered. */
export function edgeContext (app: FastifyInstance): EdgeContext {
  const { config } = app.pulse
  return {
    app,
    hub: app.streaming,
    known: new Set(config.tickers),
    readToken: config.readToken === undefined ? undefined : new SecretSet([config.readToken])
  }
}

function admit (context: EdgeContext, request: EdgeRequest, websocket: boolean): ReturnType<ChannelHub['admit']> {
  return context.hub.admit({
    authorization: request.headers.authorization,
    origin: request.headers.origin,
    queryToken: request.query.get('token') ?? undefined
  }, context.readToken, context.app.pulse.config.allowedOrigins, websocket)
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
  actor?: ConnectionActor
  session?: WsSession
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
      const topic = event.topic as string
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
 * holding a JSON array of them (and clients that ask for it take no topic).
 */
function uwsWsSink (socket: WebSocket<Connection>, batch: boolean, topics: TopicFanOut): Sink {
  const state = socket.getUserData()
  return {
    writeOne (event: Rendered): void {
      if (state.closed) return
      if (event.topic !== undefined && !batch) topics.send(socket, event)
      else socket.send(event.wsBytes, false)
    },
    watching (series, watching): void {
      if (state.closed || batch) return
      if (watching) socket.subscribe(series)
      else socket.unsubscribe(series)
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
      const admitted = admit(context, request, true)
      if ('code' in admitted) return sendError(res, admitted.code, undefined, admitted.headers)
      const connection: Connection = { request, release: admitted.release, closed: false, deferred: 0 }
      res.upgrade(connection, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), socketContext)
    },
    open: (socket) => {
      const connection = socket.getUserData()
      const query = queryOf(connection.request)
      const actor = hub.open(uwsWsSink(socket, query('batch') === '1', topics), 'ws', () => connection.release())
      const session = new WsSession(actor, hub, app.pulse, known)
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
  const { config } = app.pulse
  return (res, req) => {
    const request = readRequest(res, req)
    const query = queryOf(request)
    const series = eventStreamSeries(query, config.tickers, known)
    if (!Array.isArray(series)) return sendError(res, series.code, series.message)
    const admitted = admit(context, request, false)
    if ('code' in admitted) return sendError(res, admitted.code, undefined, admitted.headers)
    let open = true
    res.onAborted(() => {
      open = false
      actor?.onSocketClosed()
      admitted.release()
    })
    let actor: ConnectionActor | undefined
    const start = async (): Promise<void> => {
      const headers = await appHeaders(app, request)
      if (!open) return
      const writer = uwsSseWriter(res, () => open, () => actor?.drained())
      res.cork(() => {
        res.writeStatus(statusLine(200))
        for (const [name, value] of headers) res.writeHeader(name, value)
        for (const [name, value] of Object.entries(SSE_HEADERS)) res.writeHeader(name, value)
        res.write(SSE_PREAMBLE)
      })
      actor = hub.open(sseSink(writer), 'sse', () => admitted.release())
      await startEventStream(hub, app.pulse, actor, series, eventStreamResumePoint(request.headers['last-event-id'], query))
    }
    start().catch((err: unknown) => {
      app.log.warn({ err }, 'event stream start failed')
      if (open && actor === undefined) {
        admitted.release()
        res.cork(() => sendError(res, 'PULSE_ERR_INTERNAL'))
      }
    })
  }
}

import uWS, { type WebSocket, type WebSocketBehavior } from 'uWebSockets.js'
import type { ConnectionActor } from '../streaming/connection-actor.js'
import { openConnection } from '../streaming/hub-plugin.js'
import { CloseCode, MAX_MESSAGE_BYTES } from '../streaming/limits.js'
import { listParam } from '../streaming/subscriptions.js'
import { WsSession } from '../streaming/ws-session.js'
import { admit, type EdgeContext } from './edge-admission.js'
import { type EdgeRequest, readRequest, sendError } from './edge-request.js'
import { endWebSocket, type SocketState, uwsWsSink } from './ws-sink.js'

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

interface Connection extends SocketState {
  request: EdgeRequest
  release: () => void
  actor?: ConnectionActor
  session?: WsSession
}

/**
 * `GET /api/v2/ws` on uWS: the admission rules run on the upgrade request, then each socket
 * gets a connection actor and the engine-independent {@link WsSession}; uWS's `drain`
 * lets the actor resume as soon as backpressure clears.
 */
export function wsBehavior (context: EdgeContext): WebSocketBehavior<Connection> {
  const { app, hub, known } = context
  return {
    maxPayloadLength: MAX_FRAME_BYTES,
    maxBackpressure: MAX_BACKPRESSURE_BYTES,
    compression: uWS.DISABLED,
    upgrade: (res, req, socketContext) => {
      const request = readRequest(res, req)
      const admitted = admit(context, request, true)
      if ('code' in admitted) return sendError(res, admitted.code, undefined, admitted.headers)
      const connection: Connection = { request, release: admitted.release, closed: false }
      res.upgrade(connection, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), socketContext)
    },
    open,
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

  function open (socket: WebSocket<Connection>): void {
    const connection = socket.getUserData()
    const { query } = connection.request
    const actor = openConnection(app, uwsWsSink(socket, query.get('batch') === '1'), 'ws', () => connection.release())
    const session = new WsSession(actor, hub, app.pulse, known)
    connection.actor = actor
    connection.session = session
    const tickers = listParam(query.get('tickers') ?? undefined)
    if (tickers.length === 0) return
    const resolutions = query.get('resolutions')
    const since = query.get('since')
    session.subscribe({
      op: 'subscribe',
      tickers,
      resolutions: resolutions === null ? ['1m'] : listParam(resolutions),
      ...(since === null ? {} : { since })
    }).catch((err: unknown) => app.log.warn({ err }, 'initial subscription failed'))
  }
}

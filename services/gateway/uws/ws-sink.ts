import type { WebSocket } from 'uWebSockets.js'
import { CloseCode, type CloseReason } from '../streaming/limits.js'
import type { Sink } from '../streaming/sink.js'
import type { Rendered } from '../streaming/stream-event.js'

/** How long a closing socket may take to finish its close handshake before it is dropped. */
const CLOSE_GRACE_MS = 5000

const CLOSE_TEXT: Record<CloseReason, string> = {
  restart: 'service restart; reconnect',
  stalled: 'client too slow; reconnect and resume',
  flood: 'too many messages'
}

/** Per-socket state the sink shares with the route: uWS throws on any call to a closed socket. */
export interface SocketState {
  closed: boolean
}

/** Closes a uWS socket with `code`, dropping it if the close handshake stalls. */
export function endWebSocket<T extends SocketState> (socket: WebSocket<T>, code: number, text: string): void {
  const state = socket.getUserData()
  if (state.closed) return
  socket.end(code, text)
  setTimeout(() => { if (!state.closed) socket.close() }, CLOSE_GRACE_MS).unref()
}

/**
 * A sink on a uWebSockets.js socket. A flush is corked, so its messages leave in one
 * write; `getBufferedAmount()` is uWS's own backpressure buffer, which the connection
 * actor watches exactly as it watches `ws`'s `bufferedAmount`. With `batch` a flush is a
 * single message holding a JSON array of events.
 */
export function uwsWsSink<T extends SocketState> (socket: WebSocket<T>, batch: boolean): Sink {
  const state = socket.getUserData()
  return {
    write (events: readonly Rendered[]): void {
      if (state.closed) return
      if (batch && events.length > 1) {
        socket.send(`[${events.map((e) => e.ws).join(',')}]`, false)
        return
      }
      socket.cork(() => {
        for (const event of events) socket.send(event.wsBytes, false)
      })
    },
    bufferedAmount: () => state.closed ? 0 : socket.getBufferedAmount(),
    keepAlive: () => {},
    close: (reason) => endWebSocket(socket, CloseCode[reason], CLOSE_TEXT[reason])
  }
}

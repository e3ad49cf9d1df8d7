import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import { CloseCode, type CloseReason } from './limits.js'
import type { Sink } from './sink.js'
import type { Rendered } from './stream-event.js'

/** How long a closing socket may take to finish its close handshake before it is dropped. */
const CLOSE_GRACE_MS = 5000

const CLOSE_TEXT: Record<CloseReason, string> = {
  restart: 'service restart; reconnect',
  stalled: 'client too slow; reconnect and resume',
  flood: 'too many messages'
}

/** Closes a `ws` socket with the code of `reason`, dropping it if the handshake stalls. */
export function closeWebSocket (socket: WebSocket, reason: CloseReason): void {
  socket.close(CloseCode[reason], CLOSE_TEXT[reason])
  setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref()
}

/**
 * A sink on a `ws` WebSocket. Each event is one message (SPEC §4) and a flush is written
 * with the TCP socket corked, so it leaves in one write; with `batch` a flush is a single
 * message holding a JSON array of events.
 */
export function wsSink (socket: WebSocket, batch: boolean): Sink {
  // `_socket` is internal to ws, but it is the only way to cork the frames of one flush.
  const tcp = (socket as unknown as { _socket?: Socket })._socket
  return {
    write (events: readonly Rendered[]): void {
      if (socket.readyState !== socket.OPEN) return
      if (batch && events.length > 1) {
        socket.send(`[${events.map((e) => e.ws).join(',')}]`)
        return
      }
      tcp?.cork()
      for (const event of events) socket.send(event.wsBytes, { binary: false })
      if (tcp !== undefined) process.nextTick(() => tcp.uncork())
    },
    bufferedAmount: () => socket.bufferedAmount,
    keepAlive: () => {},
    close: (reason) => closeWebSocket(socket, reason)
  }
}

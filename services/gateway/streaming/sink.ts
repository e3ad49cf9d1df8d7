import type { CloseReason } from './limits.js'
import type { Rendered } from './stream-event.js'

/**
 * The socket side of a connection, one per transport and engine (ws, SSE, uWebSockets.js).
 * The connection actor decides what to send and when; a sink only encodes and writes.
 */
export interface Sink {
  /** Writes one flush worth of events in as few frames as the transport allows. */
  write: (events: readonly Rendered[]) => void
  /** Bytes accepted but not yet handed to the kernel. */
  bufferedAmount: () => number
  /** An SSE comment keeps proxies from timing out an idle stream; a no-op elsewhere. */
  keepAlive: () => void
  /** Ends the connection, telling the client to reconnect where that makes sense. */
  close: (reason: CloseReason) => void
}

import type { ServerResponse } from 'node:http'
import type { CloseReason } from './limits.js'
import type { Sink } from './sink.js'
import type { Rendered } from './stream-event.js'

/** Reconnection delay sent to EventSource clients, ms. */
export const SSE_RETRY_MS = 1000

/** The status line and headers of an event stream. */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  // Proxies such as nginx would otherwise buffer the stream.
  'x-accel-buffering': 'no'
}

/** The first bytes of every stream: the reconnection delay and a comment. */
export const SSE_PREAMBLE = `retry: ${SSE_RETRY_MS}\n: pulse stream\n\n`

/** Minimal writable side of an SSE response, so other engines can supply their own. */
export interface SseWriter {
  write: (chunk: string) => void
  end: () => void
  destroy: () => void
  bufferedAmount: () => number
}

/** An SSE writer over a Node HTTP response. */
export function nodeSseWriter (res: ServerResponse): SseWriter {
  return {
    write: (chunk) => { if (!res.writableEnded) res.write(chunk) },
    end: () => { if (!res.writableEnded) res.end() },
    destroy: () => res.destroy(),
    bufferedAmount: () => res.writableLength
  }
}

/**
 * A sink on a Server-Sent Events stream: a flush is one write of `id:`/`event:`/`data:`
 * blocks. A restart ends the stream after repeating `retry:` so clients come straight
 * back; a stalled client is cut off and reconnects on its own.
 */
export function sseSink (writer: SseWriter): Sink {
  return {
    write: (events: readonly Rendered[]) => writer.write(events.map((e) => e.sse).join('')),
    bufferedAmount: writer.bufferedAmount,
    keepAlive: () => writer.write(': keep-alive\n\n'),
    close (reason: CloseReason): void {
      if (reason === 'restart') {
        writer.write(`retry: ${SSE_RETRY_MS}\n: service restart; reconnect\n\n`)
        writer.end()
      } else {
        writer.destroy()
      }
    }
  }
}

import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import * as ws from 'ws'
import { WebSocket } from 'ws'
import type { Sink } from './connection-actor.js'
import type { ResumeToken } from './resume.js'
import { CLOSE_GRACE_MS, CLOSE_TEXT, CloseCode, type CloseReason, type Rendered, SSE_KEEP_ALIVE, SSE_RESTART } from './protocol.js'

/*
 * The sinks of the Fastify engine: a `ws` WebSocket and a Server-Sent Events response on a
 * Node HTTP response (the SSE sink also serves the uWS engine through its own writer).
 */

/** Closes a `ws` socket with the code of `reason`, dropping it if the handshake stalls. */
export function closeWebSocket (socket: WebSocket, reason: CloseReason): void {
  socket.close(CloseCode[reason], CLOSE_TEXT[reason])
  setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref()
}

/** `ws` internals the sink reads: the TCP socket, and whether ws's own sender has a queue. */
interface WsInternals {
  _socket?: Socket
  _sender?: { _bufferedBytes: number }
}

/** ws's frame encoder (`Sender.frame`), which its type declarations leave out. */
const frame = (ws as unknown as { Sender: { frame: (data: Buffer, options: { fin: boolean, rsv1: boolean, opcode: number, mask: boolean, readOnly: boolean }) => Buffer[] } }).Sender.frame

/** The WebSocket text frame of `event`, built once and shared by every socket. */
function preparedFrame (event: Rendered): Buffer {
  event.wsFrame ??= Buffer.concat(frame(event.wsBytes, { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: true }))
  return event.wsFrame
}

/** Streams corked during this tick, uncorked together once the tick's events are written. */
const corked: Array<{ uncork: () => void }> = []

function uncorkAll (): void {
  for (const stream of corked) stream.uncork()
  corked.length = 0
}

/**
 * Corks `stream` until the end of the tick (once; later writes of the tick join it), so
 * events that reach a client in the same tick — a bus message with several buckets, a
 * burst — leave in one write instead of one system call each.
 */
function corkForTick (stream: { writableCorked: number, cork: () => void, uncork: () => void }): void {
  if (stream.writableCorked > 0) return
  stream.cork()
  if (corked.push(stream) === 1) process.nextTick(uncorkAll)
}

/**
 * A sink on a `ws` WebSocket. Each event is one message (SPEC §4), written as a prepared
 * frame straight to the TCP socket: the frame is built once per event, not once per
 * client. ws's sender is bypassed only while it has nothing queued (no compression, no
 * blobs), so frames keep their order. With `batch`, events ready together are a single
 * message holding a JSON array of them.
 */
export function wsSink (socket: WebSocket, batch: boolean): Sink {
  // `_socket` and `_sender` are internal to ws; reading them is what makes a shared frame possible.
  const internals = socket as unknown as WsInternals
  const tcp = internals._socket
  const sendOne = (event: Rendered): void => {
    if (tcp === undefined || internals._sender?._bufferedBytes !== 0) {
      socket.send(event.wsBytes, { binary: false })
      return
    }
    corkForTick(tcp)
    tcp.write(preparedFrame(event))
  }
  return {
    writeOne (event: Rendered): void {
      if (socket.readyState === WebSocket.OPEN) sendOne(event)
    },
    write (events: readonly Rendered[]): void {
      if (socket.readyState !== WebSocket.OPEN) return
      if (batch) {
        socket.send(`[${events.map((e) => e.ws).join(',')}]`)
        return
      }
      for (const event of events) sendOne(event)
    },
    bufferedAmount: () => socket.bufferedAmount,
    keepAlive: () => {},
    close: (reason) => closeWebSocket(socket, reason)
  }
}

/** Minimal writable side of an SSE response, so each engine can supply its own. */
export interface SseWriter {
  write: (chunk: Buffer | string) => void
  end: () => void
  destroy: () => void
  bufferedAmount: () => number
}

/** An SSE writer over a Node HTTP response; writes of one tick leave together. */
export function nodeSseWriter (res: ServerResponse): SseWriter {
  return {
    write: (chunk) => {
      if (res.writableEnded) return
      corkForTick(res)
      res.write(chunk)
    },
    end: () => { if (!res.writableEnded) res.end() },
    destroy: () => res.destroy(),
    bufferedAmount: () => res.writableLength
  }
}

/**
 * A sink on a Server-Sent Events stream: each event is its shared `event:`/`data:` block,
 * a bucket event led by the stream's resume token as its `id:` (the token of this
 * connection, after that event); events ready together are one write. A restart ends the
 * stream after repeating `retry:` so clients come straight back; a stalled client is cut
 * off and reconnects on its own.
 */
export function sseSink (writer: SseWriter, token?: ResumeToken): Sink {
  const block = (event: Rendered): Buffer => {
    if (token === undefined || event.position === undefined || event.topic === undefined) return event.sse
    token.advance(event.topic, event.position)
    return Buffer.concat([Buffer.from(`id: ${token.text}\n`), event.sse])
  }
  return {
    writeOne: (event) => writer.write(block(event)),
    write: (events) => writer.write(Buffer.concat(events.map(block))),
    bufferedAmount: writer.bufferedAmount,
    keepAlive: () => writer.write(SSE_KEEP_ALIVE),
    close (reason: CloseReason): void {
      if (reason === 'restart') {
        writer.write(SSE_RESTART)
        writer.end()
      } else if (reason === 'expired') {
        writer.end()
      } else {
        writer.destroy()
      }
    }
  }
}

import type { HttpResponse } from 'uWebSockets.js'
import type { SseWriter } from '../streaming/sse-sink.js'

/** A comment line: harmless to EventSource parsers, used to learn whether the socket drained. */
const PROBE = ':\n\n'

/**
 * An SSE writer on a uWS `HttpResponse`, for `sseSink`. Every write is corked (uWS asks
 * for that outside its own callbacks). uWS keeps what the kernel does not take and reports
 * only whether its buffer was empty: a write returns false when earlier bytes are still
 * waiting. So the buffered amount is an upper bound: the bytes written since the buffer
 * was last known empty. When uWS says the socket is writable again, a two-byte comment
 * probes whether the buffer drained, and `onDrained` is called when it has.
 */
export function uwsSseWriter (res: HttpResponse, isOpen: () => boolean, onDrained: () => void): SseWriter {
  let buffered = 0
  let last = 0
  let ended = false
  const write = (chunk: string): void => {
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

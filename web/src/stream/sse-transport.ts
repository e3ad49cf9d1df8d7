import { parseMessage, sseSelection, type StreamMessage, type Subscription, type Transport, type TransportHandlers } from './transport.js'

/**
 * Reads `/api/v2/stream` with `fetch` rather than `EventSource`, because only `fetch` can
 * send `Last-Event-ID` on a reconnection this client schedules itself (with backoff).
 */
export function openEventStream (base: URL, subscription: Subscription, handlers: TransportHandlers, limit: number): Transport {
  const url = new URL('/api/v2/stream', base)
  const selection = sseSelection(subscription.series, limit)
  url.searchParams.set('resolutions', selection.resolutions.join(','))
  url.searchParams.set('tickers', selection.tickers.join(','))
  const abort = new AbortController()
  let opened = false
  let ended = false
  const end = (reason: string): void => {
    if (ended) return
    ended = true
    handlers.onEnd({ opened, reason })
  }

  const headers: Record<string, string> = { accept: 'text/event-stream' }
  if (subscription.since !== undefined) headers['last-event-id'] = subscription.since

  const read = async (): Promise<void> => {
    const res = await fetch(url, { headers, signal: abort.signal, cache: 'no-store' })
    if (!res.ok || res.body === null) return end(`HTTP ${res.status}`)
    opened = true
    handlers.onOpen()
    const parser = new SseParser((name, data, id) => {
      const message = parseMessage(data)
      if (message === undefined) return
      if (typeof message.type !== 'string') message.type = name
      if (id !== undefined && message.id === undefined) message.id = id
      handlers.onMessage(message as StreamMessage)
    })
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return end('stream ended')
      parser.push(value)
    }
  }
  read().catch((err: unknown) => end((err as Error).message))
  return {
    kind: 'sse',
    update: () => false,
    close: () => {
      ended = true
      abort.abort()
    }
  }
}

/** The text/event-stream format: fields until a blank line, then one event. */
export class SseParser {
  private buffer = ''
  private event = 'message'
  private data: string[] = []
  private id: string | undefined

  constructor (private readonly dispatch: (event: string, data: string, id: string | undefined) => void) {}

  push (chunk: string): void {
    this.buffer += chunk
    let newline = this.buffer.search(/\r\n|\r|\n/)
    while (newline >= 0) {
      const line = this.buffer.slice(0, newline)
      const width = this.buffer.startsWith('\r\n', newline) ? 2 : 1
      this.buffer = this.buffer.slice(newline + width)
      this.line(line)
      newline = this.buffer.search(/\r\n|\r|\n/)
    }
  }

  private line (line: string): void {
    if (line === '') {
      if (this.data.length > 0) this.dispatch(this.event, this.data.join('\n'), this.id)
      this.event = 'message'
      this.data = []
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') this.event = value
    else if (field === 'data') this.data.push(value)
    else if (field === 'id' && !value.includes('\0')) this.id = value
  }
}

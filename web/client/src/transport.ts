import type { ServerEvent } from './types.js'

/** The part of the WebSocket API the SDK uses: the browser's, Node 22's, or the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number
  send: (data: string) => void
  close: (code?: number, reason?: string) => void
  addEventListener: (type: 'open' | 'message' | 'close' | 'error', listener: (event: { data?: unknown, code?: number }) => void) => void
}

export type WebSocketConstructor = new (url: string) => WebSocketLike

/** How a connection ended. */
export interface TransportEnd {
  /** Whether it ever opened: one that never did may be blocked on this network. */
  opened: boolean
  /** The runtime refused to create it at all (no WebSocket, a policy, an extension). */
  blocked?: boolean
  /** WebSocket close code. */
  code?: number
  /** HTTP status of a refused event stream, and its error body's code. */
  status?: number
  errorCode?: string
  /** Seconds the gateway asked to wait (`Retry-After`). */
  retryAfter?: number
}

/** What a transport reports; `end` is called once, but not after the owner closed it. */
export interface TransportHandlers {
  open: () => void
  message: (message: ServerEvent) => void
  /** Anything arrived (a comment line too): the connection is alive. */
  alive: () => void
  end: (end: TransportEnd) => void
}

export interface Transport {
  readonly kind: 'ws' | 'sse'
  /** Sends a message (WebSocket only). */
  send: (text: string) => void
  close: () => void
}

function parse (text: string): ServerEvent | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as ServerEvent : undefined
  } catch {
    return undefined
  }
}

/** Opens a WebSocket; messages that are not JSON objects with a `type` are ignored. */
export function openWebSocket (WS: WebSocketConstructor | undefined, url: string, on: TransportHandlers): Transport {
  let socket: WebSocketLike
  let opened = false
  let ended = false
  const end = (info: Omit<TransportEnd, 'opened'>): void => {
    if (ended) return
    ended = true
    on.end({ opened, ...info })
  }
  try {
    if (WS === undefined) throw new Error('no WebSocket')
    socket = new WS(url)
  } catch {
    queueMicrotask(() => end({ blocked: true }))
    return { kind: 'ws', send: () => {}, close: () => { ended = true } }
  }
  socket.addEventListener('open', () => {
    opened = true
    on.open()
  })
  socket.addEventListener('message', (event) => {
    on.alive()
    const message = typeof event.data === 'string' ? parse(event.data) : undefined
    if (typeof message?.type === 'string') on.message(message)
  })
  socket.addEventListener('close', (event) => end(event.code === undefined ? {} : { code: event.code }))
  socket.addEventListener('error', () => end({}))
  return {
    kind: 'ws',
    send: (text) => { if (opened && !ended && socket.readyState === 1) socket.send(text) },
    close: () => {
      ended = true
      socket.close(1000, 'client closing')
    }
  }
}

/**
 * Reads an event stream with `fetch` rather than `EventSource`: only `fetch` can send
 * `Authorization` and a `Last-Event-ID` chosen by the SDK on a reconnection it schedules
 * itself (with backoff), in browsers and in Node alike.
 */
export function openEventStream (fetcher: typeof fetch, url: string, headers: Record<string, string>, on: TransportHandlers): Transport {
  const abort = new AbortController()
  let opened = false
  let ended = false
  const end = (info: Omit<TransportEnd, 'opened'>): void => {
    if (ended) return
    ended = true
    on.end({ opened, ...info })
  }
  const read = async (): Promise<void> => {
    const res = await fetcher(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal })
    if (!res.ok || res.body === null) {
      const body = parse(await res.text().catch(() => '')) as { error?: { code?: string } } | undefined
      const retry = Number(res.headers.get('retry-after'))
      return end({
        status: res.status,
        ...(typeof body?.error?.code === 'string' ? { errorCode: body.error.code } : {}),
        ...(retry > 0 ? { retryAfter: retry } : {})
      })
    }
    opened = true
    on.open()
    let buffer = ''
    let event = 'message'
    let data: string[] = []
    let id: string | undefined
    const line = (text: string): void => {
      if (text === '') {
        const message = data.length > 0 ? parse(data.join('\n')) : undefined
        if (message !== undefined) {
          const fields = message as unknown as Record<string, unknown>
          fields.type ??= event
          if (id !== undefined) fields.id ??= id
          on.message(message)
        }
        event = 'message'
        data = []
        return
      }
      if (text.startsWith(':')) return
      const colon = text.indexOf(':')
      const field = colon < 0 ? text : text.slice(0, colon)
      let value = colon < 0 ? '' : text.slice(colon + 1)
      if (value.startsWith(' ')) value = value.slice(1)
      if (field === 'event') event = value
      else if (field === 'data') data.push(value)
      else if (field === 'id' && !value.includes('\0')) id = value
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done || ended) return end({})
      on.alive()
      buffer += value
      const lines = buffer.split(/\r\n|\r|\n/)
      buffer = lines.pop() ?? ''
      for (const text of lines) line(text)
    }
  }
  read().catch(() => end({}))
  return {
    kind: 'sse',
    send: () => {},
    close: () => {
      ended = true
      abort.abort()
    }
  }
}

/** A subscribe message's selection: every ticker here at every resolution here. */
export interface SeriesGroup {
  tickers: string[]
  resolutions: string[]
}

/** The `TICKER#resolution` keys a tickers × resolutions group covers. */
export function keysOf (group: SeriesGroup): string[] {
  return group.tickers.flatMap((t) => group.resolutions.map((r) => `${t}#${r}`))
}

/**
 * Packs `TICKER#resolution` keys into as few tickers × resolutions groups as cover them
 * exactly (tickers watched at the same resolutions share a group), so a change of
 * selection costs a message or two of the gateway's message budget.
 */
export function groupSeries (keys: Iterable<string>): SeriesGroup[] {
  const byTicker = new Map<string, string[]>()
  for (const key of keys) {
    const [ticker, resolution] = key.split('#') as [string, string]
    byTicker.set(ticker, [...byTicker.get(ticker) ?? [], resolution])
  }
  const groups = new Map<string, SeriesGroup>()
  for (const [ticker, resolutions] of byTicker) {
    const sorted = resolutions.sort()
    const signature = sorted.join()
    const group = groups.get(signature) ?? { tickers: [], resolutions: sorted }
    group.tickers.push(ticker)
    groups.set(signature, group)
  }
  return [...groups.values()]
}

/**
 * An event stream selects every listed ticker at every listed resolution, so a selection
 * that is not such a product is widened to one (the SDK drops the extra series' events);
 * tickers are left off from the end, the series subscribed last, until it fits `limit`.
 */
export function streamSelection (keys: readonly string[], limit: number): SeriesGroup {
  const tickers: string[] = []
  const resolutions = new Set<string>()
  for (const group of groupSeries(keys)) {
    for (const r of group.resolutions) resolutions.add(r)
    for (const ticker of group.tickers) {
      if (tickers.length > 0 && (tickers.length + 1) * resolutions.size > limit) break
      tickers.push(ticker)
    }
  }
  return { tickers, resolutions: [...resolutions] }
}

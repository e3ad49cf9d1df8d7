import { groupSeries, parseMessage, type StreamMessage, type Subscription, type Transport, type TransportHandlers } from './transport.js'

/**
 * Opens `/api/v2/ws` and subscribes (resuming after `since`) once it is open; later
 * changes of the selection are sent as unsubscribe-then-subscribe for the difference
 * only, so the connection never holds more than the new selection.
 */
export function openWebSocket (base: URL, subscription: Subscription, handlers: TransportHandlers): Transport {
  const url = new URL('/api/v2/ws', base)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  let socket: WebSocket
  try {
    socket = new WebSocket(url)
  } catch (err) {
    queueMicrotask(() => handlers.onEnd({ opened: false, blocked: true, reason: (err as Error).message }))
    return { kind: 'ws', update: () => true, close: () => {} }
  }
  let opened = false
  let ended = false
  /** What the gateway holds for this connection once it has read everything sent. */
  let held = new Set<string>()
  /** The selection to hold; sent at open when it changed while connecting. */
  let wanted = new Set(subscription.series)
  const end = (reason: string): void => {
    if (ended) return
    ended = true
    handlers.onEnd({ opened, reason })
  }
  const send = (op: 'subscribe' | 'unsubscribe', keys: Iterable<string>, since?: string): void => {
    for (const group of groupSeries(keys)) {
      socket.send(JSON.stringify({ op, tickers: group.tickers, resolutions: group.resolutions, ...(since === undefined ? {} : { since }) }))
    }
  }
  const sync = (): void => {
    const drop = [...held].filter((key) => !wanted.has(key))
    const add = [...wanted].filter((key) => !held.has(key))
    // Unsubscribing first keeps the count under the limit at every step.
    if (drop.length > 0) send('unsubscribe', drop)
    if (add.length > 0) send('subscribe', add)
    held = new Set(wanted)
  }
  socket.addEventListener('open', () => {
    opened = true
    send('subscribe', wanted, subscription.since)
    held = new Set(wanted)
    handlers.onOpen()
  })
  socket.addEventListener('message', (event) => {
    if (typeof event.data !== 'string') return
    const message = parseMessage(event.data)
    if (message !== undefined && typeof message.type === 'string') handlers.onMessage(message as StreamMessage)
  })
  socket.addEventListener('close', (event) => end(`closed ${event.code}${event.reason === '' ? '' : ` ${event.reason}`}`))
  socket.addEventListener('error', () => end('error'))
  return {
    kind: 'ws',
    update: (series) => {
      wanted = new Set(series)
      if (opened && !ended && socket.readyState === WebSocket.OPEN) sync()
      return true
    },
    close: () => {
      ended = true
      socket.close(1000, 'client closing')
    }
  }
}

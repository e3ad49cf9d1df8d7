import { parseMessage, type StreamMessage, type Subscription, type Transport, type TransportHandlers } from './transport.js'

/** Opens `/api/v2/ws` and subscribes (resuming after `since`) once it is open. */
export function openWebSocket (base: URL, subscription: Subscription, handlers: TransportHandlers): Transport {
  const url = new URL('/api/v2/ws', base)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  let socket: WebSocket
  try {
    socket = new WebSocket(url)
  } catch (err) {
    queueMicrotask(() => handlers.onEnd({ opened: false, blocked: true, reason: (err as Error).message }))
    return { kind: 'ws', close: () => {} }
  }
  let opened = false
  let ended = false
  const end = (reason: string): void => {
    if (ended) return
    ended = true
    handlers.onEnd({ opened, reason })
  }
  socket.addEventListener('open', () => {
    opened = true
    socket.send(JSON.stringify({
      op: 'subscribe',
      tickers: subscription.tickers,
      resolutions: subscription.resolutions,
      ...(subscription.since === undefined ? {} : { since: subscription.since })
    }))
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
    close: () => {
      ended = true
      socket.close(1000, 'client closing')
    }
  }
}

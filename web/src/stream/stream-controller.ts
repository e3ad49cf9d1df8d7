import type { ReactiveController, ReactiveControllerHost } from 'lit'
import { Backoff } from '../util/backoff.js'
import type { StreamMessage, Subscription, Transport, TransportEnd, TransportHandlers } from './transport.js'
import { openEventStream } from './sse-transport.js'
import { openWebSocket } from './ws-transport.js'

/**
 * What the connection indicator shows: `live` over WebSocket, `sse` live over the
 * fallback, `reconnecting` between attempts, `offline` while the browser has no network.
 */
export type ConnectionState = 'connecting' | 'live' | 'sse' | 'reconnecting' | 'offline'

export interface StreamControllerOptions {
  /** Origin of the gateway. */
  base: URL
  /** The current subscription (read at every connection and by {@link StreamController.resubscribe}). */
  subscription: () => Omit<Subscription, 'since'>
  /** Most series one connection may watch (the gateway's limit). */
  maxSubscriptions: number
  /** How long an SSE connection waits before reconnecting for a changed selection. */
  sseResubscribeMs?: number
  /** Each message, in arrival order. */
  onMessage: (message: StreamMessage) => void
  /** After each successful (re)connection. */
  onConnected?: (kind: Transport['kind'], resumed: boolean) => void
  /** Silence after which a connection counts as dead; the server's heartbeat is 15 s. */
  watchdogMs?: number
  backoff?: Backoff
}

/**
 * The page's stream: WebSocket first, SSE when WebSocket fails or is blocked, reconnection
 * with full-jitter backoff, resume from the last event id, a heartbeat watchdog, and
 * reactions to `online`/`offline` and tab visibility. Hosts re-render on state changes.
 */
export class StreamController implements ReactiveController {
  state: ConnectionState = 'connecting'
  /** Id of the newest event seen, sent as `since` / `Last-Event-ID` on resume. */
  lastEventId: string | undefined
  /** When anything last arrived from the server, epoch ms. */
  lastMessageAt = 0
  /** Failed attempts since the last success. */
  failures = 0

  private transport: Transport | undefined
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private resubscribeTimer: ReturnType<typeof setTimeout> | undefined
  private watchdog: ReturnType<typeof setTimeout> | undefined
  /** The browser refused WebSocket outright: use SSE for the rest of this page. */
  private wsBlocked = false
  private started = false
  private attempt = 0
  private readonly backoff: Backoff
  private readonly watchdogMs: number

  constructor (private readonly host: ReactiveControllerHost, private readonly options: StreamControllerOptions) {
    this.backoff = options.backoff ?? new Backoff({ baseMs: 500, capMs: 20_000 })
    this.watchdogMs = options.watchdogMs ?? 35_000
    host.addController(this)
  }

  hostConnected (): void {
    window.addEventListener('online', this.handleOnline)
    window.addEventListener('offline', this.handleOffline)
    document.addEventListener('visibilitychange', this.handleVisibility)
  }

  hostDisconnected (): void {
    window.removeEventListener('online', this.handleOnline)
    window.removeEventListener('offline', this.handleOffline)
    document.removeEventListener('visibilitychange', this.handleVisibility)
    this.stop()
    this.started = false
  }

  /** Connects for the first time (once the subscription is known). */
  start (): void {
    if (this.started) return
    this.started = true
    if (!navigator.onLine) this.setState('offline')
    else this.connect('ws')
  }

  /** Drops the current connection and connects again at once with the current subscription. */
  restart (): void {
    if (!this.started) return
    this.stop()
    this.connect('ws')
  }

  /**
   * Applies a changed subscription: at once on a WebSocket (the difference only); on SSE,
   * which fixes its selection in the URL, by reconnecting with resume after a quiet moment,
   * so scrolling the list does not reconnect on every row.
   */
  resubscribe (): void {
    const transport = this.transport
    if (transport === undefined) return
    if (transport.update(this.options.subscription().series)) return
    clearTimeout(this.resubscribeTimer)
    this.resubscribeTimer = setTimeout(() => {
      if (this.transport !== transport) return
      this.stop()
      this.connect(transport.kind)
    }, this.options.sseResubscribeMs ?? 1500)
  }

  private connect (kind: Transport['kind']): void {
    clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    const useKind = kind === 'ws' && this.wsBlocked ? 'sse' : kind
    const subscription = { ...this.options.subscription(), since: this.lastEventId }
    // Callbacks of a connection that has since been replaced or stopped are ignored.
    const attempt = ++this.attempt
    const current = (): boolean => this.attempt === attempt
    // Live once the gateway confirmed what it streams: a WebSocket's subscription is a message
    // the gateway may still be handling when the socket opens; an SSE stream is set up before it answers.
    let confirmed = false
    const confirm = (): void => {
      if (confirmed) return
      confirmed = true
      this.setState(useKind === 'ws' ? 'live' : 'sse')
      this.options.onConnected?.(useKind, subscription.since !== undefined)
    }
    const handlers: TransportHandlers = {
      onOpen: () => {
        if (!current()) return
        this.failures = 0
        this.backoff.reset()
        this.lastMessageAt = Date.now()
        this.armWatchdog()
        if (useKind === 'sse' || subscription.series.length === 0) confirm()
      },
      onMessage: (message) => {
        if (!current()) return
        // Any answer counts (an `error` too: a refused selection must not leave the page "connecting" forever).
        if (message.type !== 'pong') confirm()
        this.lastMessageAt = Date.now()
        this.armWatchdog()
        if ((message.type === 'partial_bucket' || message.type === 'bucket_update' || message.type === 'heartbeat') && message.id !== undefined) {
          this.lastEventId = String(message.id)
        }
        this.options.onMessage(message)
      },
      onEnd: (end) => {
        if (!current()) return
        this.transport = undefined
        clearTimeout(this.watchdog)
        this.handleEnd(useKind, end)
      }
    }
    this.transport = useKind === 'ws' ? openWebSocket(this.options.base, subscription, handlers) : openEventStream(this.options.base, subscription, handlers, this.options.maxSubscriptions)
  }

  private handleEnd (kind: Transport['kind'], end: TransportEnd): void {
    if (end.blocked === true) this.wsBlocked = true
    // A WebSocket that never opened may be blocked by a proxy: try SSE before waiting.
    if (kind === 'ws' && !end.opened && navigator.onLine) {
      this.connect('sse')
      return
    }
    this.failures++
    if (!navigator.onLine) {
      this.setState('offline')
      return
    }
    this.setState('reconnecting')
    this.retryTimer = setTimeout(() => this.connect('ws'), this.backoff.next())
  }

  private armWatchdog (): void {
    clearTimeout(this.watchdog)
    this.watchdog = setTimeout(() => {
      // Silence past the heartbeat interval: the connection is dead even if no close came.
      this.stop()
      this.handleEnd(this.state === 'sse' ? 'sse' : 'ws', { opened: true, reason: 'heartbeat missed' })
    }, this.watchdogMs)
  }

  private stop (): void {
    this.attempt++
    clearTimeout(this.resubscribeTimer)
    clearTimeout(this.retryTimer)
    clearTimeout(this.watchdog)
    this.retryTimer = undefined
    this.transport?.close()
    this.transport = undefined
  }

  private setState (state: ConnectionState): void {
    if (this.state === state) return
    this.state = state
    this.host.requestUpdate()
  }

  private readonly handleOnline = (): void => {
    if (!this.started) return
    this.backoff.reset()
    this.stop()
    this.setState('reconnecting')
    this.connect('ws')
  }

  private readonly handleOffline = (): void => {
    if (!this.started) return
    this.stop()
    this.setState('offline')
  }

  private readonly handleVisibility = (): void => {
    if (!this.started || document.visibilityState !== 'visible') return
    // Back in view: do not sit out a long backoff, and check a connection that went quiet.
    if (this.transport === undefined && navigator.onLine) {
      this.backoff.reset()
      this.connect('ws')
    } else if (Date.now() - this.lastMessageAt > this.watchdogMs) {
      this.restart()
    }
  }
}

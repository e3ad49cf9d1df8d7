import type { StreamEncoding } from '../../../shared/stream-delta.js'
import { type SeriesKey, parseSeriesKey } from '../../../shared/timeseries/keys.js'
import type { ConnectionObserver, Transport } from '../../metrics.js'
import type { SecretSet } from '../plugins/auth.js'
import type { SeriesCache } from '../series-cache.js'
import { type AccessRequest, checkStreamAccess, ConnectionLimiter, type Refusal } from './admission.js'
import { BufferBudget } from './buffer-budget.js'
import { Channel } from './channel.js'
import { ConnectionActor, type Sink } from './connection-actor.js'
import { FlushScheduler } from './flush-scheduler.js'
import { renderHeartbeat, RETRY_AFTER_SECONDS } from './protocol.js'

/*
 * The gateway's streaming core, shared by both engines: the channel actors (one per
 * watched series), the open connections and their limits — the connection count, the
 * gateway-wide budget of buffered bytes — the admission of a new stream, and the
 * gateway-wide timers.
 */

/** How often a connection with states held back by backpressure checks its socket. */
const RECHECK_MS = 50

/** What the hub holds right now. */
export interface HubStats {
  connections: number
  channels: number
  /** Bucket states waiting: for their trailing send in channels, or held back by backpressure in connections. */
  pending: number
  /** Largest number of states one connection holds back. */
  maxPending: number
  /** Bytes buffered in user space over all connections. */
  buffered: number
  /** Connections and their subscriptions per transport. */
  transports: Partial<Record<Transport, { connections: number, subscriptions: number }>>
}

export interface ChannelHubOptions {
  cache: SeriesCache
  now: () => number
  maxConnections: number
  heartbeatMs: number
  /** Least time between two sends of the same bucket (`DEBOUNCE_MS`). */
  debounceMs: number
  /**
   * Most bytes all connections together may hold in user-space buffers
   * (`MAX_BUFFERED_MB`); over it, the connections with the largest buffers are cut.
   */
  maxBufferedBytes: number
  /** SSE comment interval; at most 15 s (SPEC §4). */
  keepAliveMs?: number
  /** Metrics of each transport's connections. */
  observer?: (transport: Transport) => ConnectionObserver | undefined
  /** A channel replaced a state waiting for its trailing send by a newer one (metrics). */
  onCoalesced?: () => void
  onError?: (err: unknown, series: SeriesKey) => void
}

/**
 * How long a client may stay unwritable before it is disconnected: two heartbeats, so a
 * client that could not take two heartbeats in a row is treated as gone.
 */
export function stallLimitMs (heartbeatMs: number): number {
  return Math.max(1000, 2 * heartbeatMs)
}

/**
 * The gateway's streaming core: the channel actors, the open connections, the connection
 * limit, the buffer budget and the gateway-wide timers (delayed sends, heartbeat, SSE
 * keep-alive). Connections join and leave channels only through the hub; channels exist
 * while they have watchers.
 */
export class ChannelHub {
  readonly limiter: ConnectionLimiter
  readonly #options: ChannelHubOptions
  readonly #channels = new Map<SeriesKey, Channel>()
  readonly #connections = new Set<ConnectionActor>()
  readonly #scheduler: FlushScheduler
  readonly #timers: NodeJS.Timeout[] = []
  readonly #observers = new Map<Transport, ConnectionObserver | undefined>()
  readonly #budget: BufferBudget
  #shuttingDown = false

  constructor (options: ChannelHubOptions) {
    this.#options = options
    this.limiter = new ConnectionLimiter(options.maxConnections)
    this.#scheduler = new FlushScheduler(options.now)
    this.#budget = new BufferBudget(options.maxBufferedBytes)
    const heartbeat = setInterval(() => this.#heartbeat(), options.heartbeatMs)
    const keepAlive = setInterval(() => {
      for (const connection of this.#connections) connection.keepAlive()
      this.#budget.enforce(this.#connections)
    }, Math.min(options.keepAliveMs ?? 15_000, 15_000))
    heartbeat.unref()
    keepAlive.unref()
    this.#timers.push(heartbeat, keepAlive)
  }

  get shuttingDown (): boolean {
    return this.#shuttingDown
  }

  /**
   * The admission of a new stream, the same on both engines: access first (401/403), then
   * a connection slot (503 with `Retry-After`). On success the caller owns the slot and
   * must release it when the stream ends.
   */
  admit (request: AccessRequest, readToken: SecretSet | undefined, allowedOrigins: readonly string[], websocket: boolean): { release: () => void } | Refusal {
    const denied = checkStreamAccess(request, readToken, allowedOrigins, websocket)
    if (denied !== undefined) return { code: denied, headers: {} }
    const release = this.#shuttingDown ? undefined : this.limiter.tryAcquire()
    if (release === undefined) {
      return {
        code: this.#shuttingDown ? 'PULSE_ERR_SHUTTING_DOWN' : 'PULSE_ERR_TOO_MANY_CONNECTIONS',
        headers: { 'retry-after': String(RETRY_AFTER_SECONDS) }
      }
    }
    return { release }
  }

  /**
   * Opens a client connection on either engine: a connection actor on `sink` with the
   * gateway's settings, tracked until it closes (then `onClose` runs, e.g. to free its
   * connection slot).
   */
  open (sink: Sink, transport: Transport, onClose: (actor: ConnectionActor) => void, encoding: StreamEncoding = 'full'): ConnectionActor {
    if (!this.#observers.has(transport)) this.#observers.set(transport, this.#options.observer?.(transport))
    const actor = new ConnectionActor(sink, {
      recheckMs: RECHECK_MS,
      stallLimitMs: stallLimitMs(this.#options.heartbeatMs),
      now: this.#options.now,
      scheduler: this.#scheduler,
      transport,
      encoding,
      observer: this.#observers.get(transport),
      onBuffered: (connection, bytes) => this.#budget.note(connection, bytes, this.#connections),
      onClose: (closed) => {
        this.remove(closed)
        onClose(closed)
      }
    })
    this.#connections.add(actor)
    return actor
  }

  /** Adds `connection` as a watcher of `series`; resolves once the channel is live. */
  async join (connection: ConnectionActor, series: SeriesKey): Promise<void> {
    if (connection.closed) return
    let channel = this.#channels.get(series)
    if (channel === undefined) {
      const parsed = parseSeriesKey(series)
      if (parsed === undefined) throw new Error(`not a series: ${series}`)
      channel = new Channel(this.#options.cache, parsed.ticker, parsed.resolution, {
        debounceMs: this.#options.debounceMs,
        now: this.#options.now,
        scheduler: this.#scheduler,
        onCoalesced: this.#options.onCoalesced
      })
      this.#channels.set(series, channel)
      channel.ready.catch((err: unknown) => this.#options.onError?.(err, series))
    }
    channel.watchers.add(connection)
    connection.watch(series)
    await channel.ready
  }

  /** Removes `connection` from the channels of `series`; empty channels close. */
  leave (connection: ConnectionActor, series: Iterable<SeriesKey>): void {
    const left = new Set<SeriesKey>()
    for (const key of series) {
      if (!connection.subscriptions.delete(key)) continue
      left.add(key)
      const channel = this.#channels.get(key)
      if (channel === undefined) continue
      channel.watchers.delete(connection)
      if (channel.watchers.size === 0) {
        this.#channels.delete(key)
        channel.close()
      }
    }
    if (left.size > 0) connection.forget(left)
  }

  /** A connection ended: leave every channel and stop tracking it. */
  remove (connection: ConnectionActor): void {
    this.leave(connection, [...connection.subscriptions])
    this.#connections.delete(connection)
    this.#budget.forget(connection)
  }

  stats (): HubStats {
    let pending = 0
    let maxPending = 0
    for (const channel of this.#channels.values()) pending += channel.waiting
    let buffered = 0
    const transports: HubStats['transports'] = {}
    for (const connection of this.#connections) {
      pending += connection.pending
      maxPending = Math.max(maxPending, connection.pending)
      buffered += connection.bufferedAmount
      const counts = transports[connection.transport] ??= { connections: 0, subscriptions: 0 }
      counts.connections++
      counts.subscriptions += connection.subscriptions.size
    }
    return { connections: this.limiter.count, channels: this.#channels.size, pending, maxPending, buffered, transports }
  }

  /** Tells every client to reconnect (elsewhere or after the restart) and stops the timers. */
  shutdown (): void {
    if (this.#shuttingDown) return
    this.#shuttingDown = true
    for (const timer of this.#timers) clearInterval(timer)
    this.#scheduler.stop()
    for (const connection of [...this.#connections]) connection.close('restart')
    for (const channel of this.#channels.values()) channel.close()
    this.#channels.clear()
  }

  #heartbeat (): void {
    if (this.#connections.size === 0) return
    const rendered = renderHeartbeat(this.#options.now(), this.limiter.count)
    for (const connection of this.#connections) connection.heartbeat(rendered)
  }
}

import type { BucketEvent } from '../../../shared/ports/index.js'
import { type Resolution, type SeriesKey, parseSeriesKey } from '../../../shared/timeseries/index.js'
import type { Transport } from '../../metrics.js'
import type { SeriesCache } from '../series-cache.js'
import type { ConnectionActor } from './connection-actor.js'
import { ConnectionLimiter } from './limits.js'
import { renderHeartbeat, StreamEvent } from './stream-event.js'

export interface ChannelHubOptions {
  cache: SeriesCache
  now: () => number
  maxConnections: number
  heartbeatMs: number
  /** SSE comment interval; at most 15 s (SPEC §4). */
  keepAliveMs?: number
  onError?: (err: unknown, series: SeriesKey) => void
}

/**
 * The actor of one `ticker#resolution` in this gateway: watches the series in the L1 cache
 * (one bus subscription per series per gateway, kept by the cache, which applies each
 * event before the channel sees it) and fans each event out to its watchers.
 */
class Channel {
  readonly watchers = new Set<ConnectionActor>()
  ready: Promise<void>
  #unwatch: (() => void) | undefined
  #closed = false

  constructor (cache: SeriesCache, ticker: string, resolution: Resolution, now: () => number) {
    this.ready = cache.watch(ticker, resolution, (event: BucketEvent) => {
      const shared = StreamEvent.fromBus(event, now())
      for (const watcher of this.watchers) watcher.offer(shared)
    }).then((unwatch) => {
      if (this.#closed) unwatch()
      else this.#unwatch = unwatch
    })
  }

  close (): void {
    this.#closed = true
    this.#unwatch?.()
    this.#unwatch = undefined
  }
}

/** What the hub holds right now. */
export interface HubStats {
  connections: number
  channels: number
  /** Pending bucket states over all connections. */
  pending: number
  /** Largest mailbox of one connection. */
  maxPending: number
  /** Bytes buffered in user space over all connections. */
  buffered: number
  /** Connections and their subscriptions per transport. */
  transports: Partial<Record<Transport, { connections: number, subscriptions: number }>>
}

/**
 * The gateway's streaming core: the channel actors, the open connections, the connection
 * limit, and the gateway-wide timers (heartbeat, SSE keep-alive). Connections join and
 * leave channels only through the hub; channels exist while they have watchers.
 */
export class ChannelHub {
  readonly limiter: ConnectionLimiter
  readonly #options: ChannelHubOptions
  readonly #channels = new Map<SeriesKey, Channel>()
  readonly #connections = new Set<ConnectionActor>()
  readonly #timers: NodeJS.Timeout[] = []
  #shuttingDown = false

  constructor (options: ChannelHubOptions) {
    this.#options = options
    this.limiter = new ConnectionLimiter(options.maxConnections)
    const heartbeat = setInterval(() => this.#heartbeat(), options.heartbeatMs)
    const keepAlive = setInterval(() => {
      for (const connection of this.#connections) connection.keepAlive()
    }, Math.min(options.keepAliveMs ?? 15_000, 15_000))
    heartbeat.unref()
    keepAlive.unref()
    this.#timers.push(heartbeat, keepAlive)
  }

  get shuttingDown (): boolean {
    return this.#shuttingDown
  }

  /** Starts tracking a connection (for heartbeats and shutdown). */
  add (connection: ConnectionActor): void {
    this.#connections.add(connection)
  }

  /** Adds `connection` as a watcher of `series`; resolves once the channel is live. */
  async join (connection: ConnectionActor, series: SeriesKey): Promise<void> {
    if (connection.closed) return
    let channel = this.#channels.get(series)
    if (channel === undefined) {
      const parsed = parseSeriesKey(series)
      if (parsed === undefined) throw new Error(`not a series: ${series}`)
      channel = new Channel(this.#options.cache, parsed.ticker, parsed.resolution, this.#options.now)
      this.#channels.set(series, channel)
      channel.ready.catch((err: unknown) => this.#options.onError?.(err, series))
    }
    channel.watchers.add(connection)
    connection.subscriptions.add(series)
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
  }

  stats (): HubStats {
    let pending = 0
    let maxPending = 0
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

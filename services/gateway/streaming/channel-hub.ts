import type { ErrorCode } from '../../../shared/errors.js'
import type { BucketEvent } from '../../../shared/ports/index.js'
import { type Resolution, type SeriesKey, parseSeriesKey } from '../../../shared/timeseries/index.js'
import type { ConnectionObserver, Transport } from '../../metrics.js'
import type { SecretSet } from '../plugins/auth.js'
import type { SeriesCache } from '../series-cache.js'
import { ConnectionActor, type Due, FlushScheduler, type Sink } from './connection.js'
import { renderHeartbeat, RETRY_AFTER_SECONDS, StreamEvent } from './protocol.js'

/*
 * The gateway's streaming core, shared by both engines: the channel actors (one per
 * watched series), the open connections and their limits — the connection count, the
 * gateway-wide budget of buffered bytes — the admission of a new stream, and the
 * gateway-wide timers.
 */

/**
 * Counts open streams (WebSocket and SSE together) against `MAX_CONNECTIONS`. A slot is
 * taken before the upgrade or the SSE response starts and given back when the socket closes.
 */
export class ConnectionLimiter {
  #count = 0

  constructor (readonly max: number) {}

  get count (): number {
    return this.#count
  }

  /** Takes a slot; undefined at the limit. The returned release is idempotent. */
  tryAcquire (): (() => void) | undefined {
    if (this.#count >= this.max) return undefined
    this.#count++
    let released = false
    return () => {
      if (released) return
      released = true
      this.#count--
    }
  }
}

/** What an access check needs from a request, whatever the engine. */
export interface AccessRequest {
  authorization: string | undefined
  origin: string | undefined
  /** `?token=`, for EventSource, which cannot set headers. */
  queryToken: string | undefined
}

/**
 * Read access to streams: with `READ_TOKEN` set, a bearer token or `?token=` must match.
 * For WebSockets, a browser's `Origin` must be allowed when `ALLOWED_ORIGINS` is set;
 * clients without an Origin are not browsers, so cross-site hijacking does not apply.
 */
export function checkStreamAccess (request: AccessRequest, readToken: SecretSet | undefined, allowedOrigins: readonly string[], websocket: boolean): ErrorCode | undefined {
  if (readToken !== undefined) {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.authorization ?? '')?.[1]
    if (!readToken.matches(bearer ?? request.queryToken)) return 'PULSE_ERR_UNAUTHORIZED'
  }
  if (websocket && allowedOrigins.length > 0 && request.origin !== undefined && !allowedOrigins.includes(request.origin)) {
    return 'PULSE_ERR_FORBIDDEN_ORIGIN'
  }
  return undefined
}

/** A stream refused before it starts: the catalogue code and any extra headers. */
export interface Refusal {
  code: ErrorCode
  headers: Record<string, string>
}

/** Buckets sent longer than a debounce ago are forgotten once a channel remembers this many. */
const PRUNE_AT = 32
/** How often a connection with states held back by backpressure checks its socket. */
const RECHECK_MS = 50

interface ChannelOptions {
  debounceMs: number
  now: () => number
  scheduler: FlushScheduler
  /** A waiting state of a bucket was replaced by a newer one (metrics). */
  onCoalesced?: (() => void) | undefined
}

/**
 * The actor of one `ticker#resolution` in this gateway: watches the series in the L1 cache
 * (one bus subscription per series per gateway, kept by the cache, which applies each
 * event before the channel sees it) and fans each event out to its watchers. The event is
 * encoded once, on first use, and every watcher writes the same bytes.
 *
 * The per-bucket rule is decided here, once for all watchers: an update goes out at once
 * unless the same bucket went out less than `debounceMs` ago; then it waits, a newer state
 * of the bucket replacing it, and the trailing send at `sentAt + debounceMs` carries the
 * newest state. Updates of different buckets never wait for each other; trailing sends
 * that fall due together go to each watcher in one write. Backpressure is each
 * connection's own business (see `ConnectionActor`).
 */
class Channel implements Due {
  readonly watchers = new Set<ConnectionActor>()
  ready: Promise<void>
  readonly #options: ChannelOptions
  /** When each bucket last went out, for buckets sent within the last debounce window. */
  readonly #sentAt = new Map<string, number>()
  /** The newest state of each bucket waiting for its trailing send. */
  readonly #waiting = new Map<string, StreamEvent>()
  #pruneAt = PRUNE_AT
  #dueAt = Infinity
  #unwatch: (() => void) | undefined
  #closed = false

  constructor (cache: SeriesCache, ticker: string, resolution: Resolution, options: ChannelOptions) {
    this.#options = options
    this.ready = cache.watch(ticker, resolution, (event: BucketEvent) => {
      const at = options.now()
      this.offer(StreamEvent.fromBus(event, at), at)
    }).then((unwatch) => {
      if (this.#closed) unwatch()
      else this.#unwatch = unwatch
    })
  }

  /** States of buckets waiting for their trailing send. */
  get waiting (): number {
    return this.#waiting.size
  }

  /** A new state of one of the series' buckets: to every watcher now, or at its trailing send. */
  offer (event: StreamEvent, now: number): void {
    if (this.#closed) return
    const waiting = this.#waiting.get(event.key)
    if (waiting !== undefined) {
      if (event.supersedes(waiting)) this.#waiting.set(event.key, event)
      this.#options.onCoalesced?.()
      return
    }
    const sentAt = this.#sentAt.get(event.key)
    if (sentAt !== undefined && now - sentAt < this.#options.debounceMs) {
      this.#waiting.set(event.key, event)
      this.#wakeAt(sentAt + this.#options.debounceMs)
      return
    }
    this.#remember(event.key, now)
    const due = [event]
    for (const watcher of this.watchers) watcher.offer(due, now)
  }

  /** Wake-up from the scheduler: the trailing sends that are due, to every watcher in one write. */
  runDue (now: number): void {
    // A wake-up that was moved earlier comes twice; the later one finds nothing to do.
    if (this.#closed || now < this.#dueAt - 1) return
    this.#dueAt = Infinity
    const due: StreamEvent[] = []
    let next = Infinity
    for (const [key, event] of this.#waiting) {
      const at = (this.#sentAt.get(key) ?? -Infinity) + this.#options.debounceMs
      if (at > now) {
        next = Math.min(next, at)
        continue
      }
      this.#waiting.delete(key)
      this.#sentAt.set(key, now)
      due.push(event)
    }
    // Event ids rise within a write.
    if (due.length > 1) due.sort((a, b) => a.time - b.time)
    if (due.length > 0) for (const watcher of this.watchers) watcher.offer(due, now)
    if (next !== Infinity) this.#wakeAt(next)
  }

  close (): void {
    this.#closed = true
    this.#waiting.clear()
    this.#sentAt.clear()
    this.#unwatch?.()
    this.#unwatch = undefined
  }

  #remember (key: string, now: number): void {
    if (this.#sentAt.size >= this.#pruneAt) {
      // Buckets sent longer than a debounce ago with nothing waiting need no memory.
      const expired = now - this.#options.debounceMs
      for (const [k, sentAt] of this.#sentAt) if (sentAt <= expired && !this.#waiting.has(k)) this.#sentAt.delete(k)
      this.#pruneAt = Math.max(PRUNE_AT, this.#sentAt.size * 2)
    }
    this.#sentAt.set(key, now)
  }

  #wakeAt (at: number): void {
    if (at >= this.#dueAt) return
    this.#dueAt = at
    this.#options.scheduler.schedule(this, at)
  }
}

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
  /** Sum of the buffered bytes each connection last reported; an upper bound between reports. */
  #bufferedEstimate = 0
  readonly #reported = new WeakMap<ConnectionActor, number>()
  #shuttingDown = false

  constructor (options: ChannelHubOptions) {
    this.#options = options
    this.limiter = new ConnectionLimiter(options.maxConnections)
    this.#scheduler = new FlushScheduler(options.now)
    const heartbeat = setInterval(() => this.#heartbeat(), options.heartbeatMs)
    const keepAlive = setInterval(() => {
      for (const connection of this.#connections) connection.keepAlive()
      this.#enforceBudget()
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
  open (sink: Sink, transport: Transport, onClose: (actor: ConnectionActor) => void): ConnectionActor {
    if (!this.#observers.has(transport)) this.#observers.set(transport, this.#options.observer?.(transport))
    const actor = new ConnectionActor(sink, {
      recheckMs: RECHECK_MS,
      stallLimitMs: stallLimitMs(this.#options.heartbeatMs),
      now: this.#options.now,
      scheduler: this.#scheduler,
      transport,
      observer: this.#observers.get(transport),
      onBuffered: (connection, bytes) => this.#noteBuffered(connection, bytes),
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
    this.#bufferedEstimate -= this.#reported.get(connection) ?? 0
    this.#reported.delete(connection)
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

  #noteBuffered (connection: ConnectionActor, bytes: number): void {
    this.#bufferedEstimate += bytes - (this.#reported.get(connection) ?? 0)
    if (bytes === 0) this.#reported.delete(connection)
    else this.#reported.set(connection, bytes)
    if (this.#bufferedEstimate > this.#options.maxBufferedBytes) this.#enforceBudget()
  }

  /**
   * Keeps the bytes buffered by all connections under `maxBufferedBytes`. The running
   * estimate only grows between reports (a socket that drained does not say so), so it is
   * first recounted; if the true total is over the budget, the connections holding the
   * most are cut with the stalled code (they reconnect and resume) until it is under.
   */
  #enforceBudget (): void {
    let total = 0
    const holders: Array<{ connection: ConnectionActor, bytes: number }> = []
    for (const connection of this.#connections) {
      const bytes = connection.bufferedAmount
      if (bytes === 0) {
        this.#reported.delete(connection)
        continue
      }
      this.#reported.set(connection, bytes)
      total += bytes
      holders.push({ connection, bytes })
    }
    this.#bufferedEstimate = total
    if (total <= this.#options.maxBufferedBytes) return
    holders.sort((a, b) => b.bytes - a.bytes)
    for (const { connection, bytes } of holders) {
      if (total <= this.#options.maxBufferedBytes) break
      total -= bytes
      connection.close('stalled')
    }
  }
}

import type { SeriesKey } from '../../../shared/timeseries/index.js'
import type { ConnectionObserver, Transport } from '../../metrics.js'
import type { CloseReason } from './limits.js'
import { Mailbox } from './mailbox.js'
import type { Sink } from './sink.js'
import type { Rendered, StreamEvent } from './stream-event.js'

export interface ConnectionOptions {
  /** Least time between two flushes. */
  debounceMs: number
  /** A client whose buffer stays above `highWaterBytes` this long is disconnected. */
  stallLimitMs: number
  /** Above this many buffered bytes the actor stops writing and lets updates coalesce. */
  highWaterBytes?: number
  /** Replies beyond this many buffered bytes mean the client is not reading: disconnect. */
  hardLimitBytes?: number
  now: () => number
  /** Called once when the connection ends, whoever ended it. */
  onClose?: (actor: ConnectionActor) => void
  /** The transport, for per-transport statistics. */
  transport?: Transport
  /** Told what each flush wrote and which states were coalesced (metrics). */
  observer?: ConnectionObserver | undefined
}

const DEFAULT_HIGH_WATER = 64 * 1024
const DEFAULT_HARD_LIMIT = 4 * 1024 * 1024

/**
 * One client connection: owns its sink (the socket) and its mailbox, and is the only
 * writer of both. Bucket events are coalesced per bucket and flushed at most every
 * `debounceMs`, only while the socket is writable; a client that stays unwritable past
 * the stall limit is disconnected with a reconnect code.
 */
export class ConnectionActor {
  /** Series this client watches; the channel hub keeps it in step with its channels. */
  readonly subscriptions = new Set<SeriesKey>()
  readonly #sink: Sink
  readonly #options: ConnectionOptions
  readonly #highWater: number
  readonly #hardLimit: number
  readonly #mailbox = new Mailbox()
  #heartbeat: Rendered | undefined
  #timer: NodeJS.Timeout | undefined
  #lastFlush = -Infinity
  #stalledSince: number | undefined
  #closed = false
  /** Events written to the sink (for tests and metrics). */
  sent = 0

  constructor (sink: Sink, options: ConnectionOptions) {
    this.#sink = sink
    this.#options = options
    this.#highWater = options.highWaterBytes ?? DEFAULT_HIGH_WATER
    this.#hardLimit = options.hardLimitBytes ?? DEFAULT_HARD_LIMIT
  }

  get transport (): Transport {
    return this.#options.transport ?? 'ws'
  }

  get closed (): boolean {
    return this.#closed
  }

  /** Pending bucket states (at most one per bucket). */
  get pending (): number {
    return this.#mailbox.size
  }

  get bufferedAmount (): number {
    return this.#closed ? 0 : this.#sink.bufferedAmount()
  }

  /** Queues a bucket state for the next flush. */
  offer (event: StreamEvent): void {
    if (this.#closed) return
    const before = this.#mailbox.size
    this.#mailbox.put(event)
    if (this.#mailbox.size === before) this.#options.observer?.coalesced()
    this.#schedule()
  }

  /** Queues the heartbeat; only the newest one is kept. */
  heartbeat (rendered: Rendered): void {
    if (this.#closed) return
    this.#heartbeat = rendered
    this.#schedule()
  }

  /** Sends a direct reply (pong, snapshot, error) now, ahead of pending updates. */
  reply (rendered: Rendered): void {
    if (this.#closed) return
    if (this.#sink.bufferedAmount() > this.#hardLimit) {
      this.close('stalled')
      return
    }
    this.#sink.write([rendered])
  }

  keepAlive (): void {
    if (!this.#closed && this.#sink.bufferedAmount() <= this.#highWater) this.#sink.keepAlive()
  }

  /**
   * The transport reports its buffer drained (uWS `drain`). States held back by
   * backpressure go out now instead of at the next debounce tick; the last real flush was
   * at least a debounce ago, since the held-back flush was itself on schedule.
   */
  drained (): void {
    if (this.#closed || this.#stalledSince === undefined || this.#sink.bufferedAmount() > this.#highWater) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#flush(false)
  }

  /** Forgets pending states of series the client left. */
  forget (series: ReadonlySet<SeriesKey>): void {
    this.#mailbox.drop((event) => series.has(`${event.bucket.ticker}#${event.bucket.resolution}`))
  }

  /** Ends the connection from the gateway's side. */
  close (reason: CloseReason): void {
    if (this.#closed) return
    if (reason === 'restart') this.#flush(true)
    this.#sink.close(reason)
    this.onSocketClosed()
  }

  /** The socket closed (either side): release everything. */
  onSocketClosed (): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#mailbox.clear()
    this.#heartbeat = undefined
    this.#options.onClose?.(this)
  }

  #schedule (): void {
    if (this.#timer !== undefined) return
    const delay = Math.max(0, this.#lastFlush + this.#options.debounceMs - this.#options.now())
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#flush(false)
    }, delay)
    this.#timer.unref()
  }

  #flush (final: boolean): void {
    if (this.#closed) return
    const now = this.#options.now()
    if (this.#sink.bufferedAmount() > this.#highWater) {
      if (final) return
      this.#stalledSince ??= now
      if (now - this.#stalledSince > this.#options.stallLimitMs) {
        this.close('stalled')
        return
      }
      // Not writable: updates keep coalescing in the mailbox until the socket drains.
      this.#lastFlush = now
      this.#schedule()
      return
    }
    this.#stalledSince = undefined
    this.#lastFlush = now
    const frames: Rendered[] = []
    const acceptedAt: number[] = []
    let bytes = 0
    const events = this.#mailbox.take()
    for (let i = 0; i < events.length; i++) {
      // Bound one flush; the later events go back to the mailbox and keep coalescing.
      if (bytes > this.#highWater * 4 && !final) {
        for (let j = i; j < events.length; j++) this.#mailbox.put(events[j] as StreamEvent)
        break
      }
      const event = events[i] as StreamEvent
      const rendered = event.render(now)
      frames.push(rendered)
      if (event.acceptedAt !== undefined) acceptedAt.push(event.acceptedAt)
      bytes += rendered.ws.length
    }
    if (this.#heartbeat !== undefined) {
      frames.push(this.#heartbeat)
      this.#heartbeat = undefined
    }
    if (frames.length === 0) return
    this.sent += frames.length
    this.#sink.write(frames)
    this.#options.observer?.sent(frames.length, acceptedAt, now)
    if (this.#mailbox.size > 0) this.#schedule()
  }
}

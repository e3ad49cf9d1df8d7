import { DeltaMemory, type StreamEncoding } from '../../../shared/stream-delta.js'
import type { Bucket } from '../../../shared/timeseries/bucket.js'
import type { SeriesKey } from '../../../shared/timeseries/keys.js'
import type { ConnectionObserver, Transport } from '../../metrics.js'
import { FlushScheduler, type Due } from './flush-scheduler.js'
import type { CloseReason, Rendered, StreamEvent } from './protocol.js'
import { vouchInOrder } from './resume.js'

/**
 * The socket side of a connection, one per transport and engine (ws, SSE, uWebSockets.js).
 * The connection actor decides when to write; a sink only writes bytes it is given,
 * which are shared by every client of the event.
 */
export interface Sink {
  /** Writes one event. */
  writeOne: (event: Rendered) => void
  /** Writes events that became ready together, in as few writes as the transport allows. */
  write: (events: readonly Rendered[]) => void
  /** Bytes accepted but not yet handed to the kernel. */
  bufferedAmount: () => number
  /** An SSE comment keeps proxies from timing out an idle stream; a no-op elsewhere. */
  keepAlive: () => void
  /** Ends the connection, telling the client to reconnect where that makes sense. */
  close: (reason: CloseReason) => void
  /** The client started or stopped watching a series (uWS keeps its topics in step). */
  watching?: (series: SeriesKey, watching: boolean) => void
}

export interface ConnectionOptions {
  /** How often a connection with states held back checks whether its socket drained. */
  recheckMs: number
  /** A client whose buffer stays above `highWaterBytes` this long is disconnected. */
  stallLimitMs: number
  /** Above this many buffered bytes the actor stops writing and lets updates coalesce. */
  highWaterBytes?: number
  /** Replies beyond this many buffered bytes mean the client is not reading: disconnect. */
  hardLimitBytes?: number
  now: () => number
  /** Wakes the actor for delayed sends; the hub shares one among all its connections. */
  scheduler?: FlushScheduler
  /** Called once when the connection ends, whoever ended it. */
  onClose?: (actor: ConnectionActor) => void
  /** Told when this connection's buffered bytes changed (the gateway-wide budget). */
  onBuffered?: (actor: ConnectionActor, bytes: number) => void
  /** The transport, for per-transport statistics. */
  transport?: Transport
  /** Told what each write carried and which states were coalesced (metrics). */
  observer?: ConnectionObserver | undefined
  /** `delta`: a bucket state goes as a `bucket_delta` when the client holds its base (WebSocket with the SDK); default `full`. */
  encoding?: StreamEncoding
}

const DEFAULT_HIGH_WATER = 64 * 1024
const DEFAULT_HARD_LIMIT = 4 * 1024 * 1024
const NO_ACCEPTED_AT: readonly number[] = []
/**
 * The `acceptedAt` list of a one-event write, reused: observers read it synchronously and
 * keep nothing, and a fan-out to thousands of sockets should not allocate per socket.
 */
const ONE_ACCEPTED_AT: number[] = [0]

/**
 * One client connection: owns its sink (the socket) and the states held back for it, and
 * is the only writer of both.
 *
 * The per-bucket rule is the channel's (one decision per series, not per client): what a
 * channel hands over is due now. The connection writes it at once unless its socket is
 * more than `highWaterBytes` behind; then the states wait, one per bucket (a newer state of
 * a waiting bucket replaces it), and go out together in one write as soon as the socket
 * drains. A client that stays unwritable past the stall limit is disconnected with a
 * reconnect code. Replies (snapshots, errors, pongs) are never held back.
 */
export class ConnectionActor implements Due {
  /** Series this client watches; the channel hub keeps it in step with its channels. */
  readonly subscriptions = new Set<SeriesKey>()
  readonly #sink: Sink
  readonly #options: ConnectionOptions
  readonly #scheduler: FlushScheduler
  readonly #highWater: number
  readonly #hardLimit: number
  /** States held back by backpressure, one per bucket; created on first use. */
  #held: Map<string, StreamEvent> | undefined
  /** The rev of the first state held back of each held bucket: the client has nothing of it from there on. */
  readonly #heldSince = new Map<string, number>()
  /** A delta connection: the state of each bucket it was sent last (the client remembers the same). */
  readonly #received: DeltaMemory<Bucket> | undefined
  #heartbeat: Rendered | undefined
  #dueAt = Infinity
  #stalledSince: number | undefined
  #reportedBuffered = 0
  #closed = false
  /** Events written to the sink (for tests and metrics). */
  sent = 0

  constructor (sink: Sink, options: ConnectionOptions) {
    this.#sink = sink
    this.#options = options
    this.#scheduler = options.scheduler ?? new FlushScheduler(options.now)
    this.#highWater = options.highWaterBytes ?? DEFAULT_HIGH_WATER
    this.#hardLimit = options.hardLimitBytes ?? DEFAULT_HARD_LIMIT
    this.#received = options.encoding === 'delta' ? new DeltaMemory() : undefined
  }

  get transport (): Transport {
    return this.#options.transport ?? 'ws'
  }

  get closed (): boolean {
    return this.#closed
  }

  /** Bucket states held back by backpressure (at most one per bucket). */
  get pending (): number {
    return this.#held?.size ?? 0
  }

  get bufferedAmount (): number {
    return this.#closed ? 0 : this.#sink.bufferedAmount()
  }

  /**
   * Bucket states due for this client, ready together (one write, or one message for a
   * batching client): written now, or held back while the socket is behind.
   */
  offer (events: readonly StreamEvent[], now = this.#options.now()): void {
    if (this.#closed || events.length === 0) return
    let fresh = events
    if (this.#held !== undefined && this.#held.size > 0) {
      // A bucket already waiting keeps its place and takes the newer state.
      fresh = events.filter((event) => !this.#replaceHeld(event))
      if (fresh.length === 0) return
    }
    if (this.#sink.bufferedAmount() > this.#highWater) {
      for (const event of fresh) this.#hold(event)
      this.#stalledSince ??= now
      this.#wakeAt(now + this.#options.recheckMs)
      return
    }
    if (this.#stalledSince !== undefined) {
      // The socket drained since states were held back: they go in the same write, and a
      // client that keeps reading is not taken for a stalled one.
      for (const event of fresh) this.#hold(event)
      this.#run(now)
      return
    }
    this.#write(fresh, now)
  }

  /** The gateway heartbeat: written now, or kept (only the newest) while backpressured. */
  heartbeat (rendered: Rendered): void {
    if (this.#closed) return
    if (this.#sink.bufferedAmount() > this.#highWater) {
      this.#heartbeat = rendered
      this.#wakeAt(this.#options.now() + this.#options.recheckMs)
      return
    }
    this.#sink.writeOne(rendered)
    this.sent++
    this.#options.observer?.sent(1, NO_ACCEPTED_AT, this.#options.now())
  }

  /** Sends a direct reply (pong, snapshot, error) now, ahead of held-back updates. */
  reply (rendered: Rendered): void {
    if (this.#closed) return
    if (this.#sink.bufferedAmount() > this.#hardLimit) {
      this.close('stalled')
      return
    }
    this.#sink.writeOne(rendered)
    this.#account()
  }

  keepAlive (): void {
    if (!this.#closed && this.#sink.bufferedAmount() <= this.#highWater) this.#sink.keepAlive()
  }

  /**
   * The transport reports its buffer drained (uWS `drain`). States held back by
   * backpressure go out now rather than at the next check.
   */
  drained (): void {
    if (this.#closed || this.#stalledSince === undefined || this.#sink.bufferedAmount() > this.#highWater) return
    this.#run(this.#options.now())
  }

  /** The channel hub added this client to the watchers of `series`. */
  watch (series: SeriesKey): void {
    this.subscriptions.add(series)
    if (!this.#closed) this.#sink.watching?.(series, true)
  }

  /** Forgets held-back states of series the client left. */
  forget (series: ReadonlySet<SeriesKey>): void {
    if (!this.#closed && this.#sink.watching !== undefined) for (const key of series) this.#sink.watching(key, false)
    if (this.#held === undefined) return
    for (const [key, event] of this.#held) {
      if (!series.has(event.series)) continue
      this.#held.delete(key)
      this.#heldSince.delete(key)
    }
  }

  /** Ends the connection from the gateway's side. */
  close (reason: CloseReason): void {
    if (this.#closed) return
    if (reason === 'restart' && this.#sink.bufferedAmount() <= this.#highWater) this.#sendHeld(this.#options.now(), true)
    this.#sink.close(reason)
    this.onSocketClosed()
  }

  /** The socket closed (either side): release everything. */
  onSocketClosed (): void {
    if (this.#closed) return
    this.#closed = true
    this.#held = undefined
    this.#heldSince.clear()
    this.#received?.clear()
    this.#heartbeat = undefined
    this.#options.onClose?.(this)
  }

  /** Wake-up from the scheduler: send what was held back if the socket drained, check a stalled one. */
  runDue (now: number): void {
    // A wake-up that was moved earlier comes twice; the later one finds nothing to do.
    if (this.#closed || now < this.#dueAt - 1) return
    this.#run(now)
  }

  #run (now: number): void {
    this.#dueAt = Infinity
    if (this.#sink.bufferedAmount() > this.#highWater) {
      this.#stalledSince ??= now
      if (now - this.#stalledSince > this.#options.stallLimitMs) {
        this.close('stalled')
        return
      }
      this.#account()
      // Checked again until it drains or is cut, whether or not anything is waiting.
      this.#wakeAt(now + this.#options.recheckMs)
      return
    }
    this.#stalledSince = undefined
    this.#sendHeld(now, false)
    this.#account()
  }

  /** Sends the held-back states (all of them when `final`, else a bounded write) and the heartbeat. */
  #sendHeld (now: number, final: boolean): void {
    const ready = this.#held === undefined ? [] : [...this.#held.values()]
    const since = new Map(this.#heldSince)
    this.#held?.clear()
    this.#heldSince.clear()
    // Positions rise within a write, so a client cut off mid-write holds what it was promised.
    ready.sort((a, b) => a.bucket.rev - b.bucket.rev)
    const heartbeat = this.#heartbeat
    this.#heartbeat = undefined
    if (ready.length > 0 || heartbeat !== undefined) this.#write(ready, now, { final, heartbeat, since })
  }

  /**
   * Writes states that are due, with the heartbeat if one is waiting, in one write of at
   * most about four high-water marks (unless `final`); the rest of a longer list (a resume
   * replay, a backlog) is held back for the next writes.
   */
  #write (events: readonly StreamEvent[], now: number, options: { final?: boolean, heartbeat?: Rendered | undefined, since?: ReadonlyMap<string, number> } = {}): void {
    const observer = this.#options.observer
    if (events.length === 1 && options.heartbeat === undefined && this.#heldSince.size === 0) {
      // The fan-out path: one event, no allocation.
      const event = events[0] as StreamEvent
      this.#sink.writeOne(this.#rendering(event, now))
      this.sent++
      if (observer !== undefined) {
        if (event.acceptedAt === undefined) {
          observer.sent(1, NO_ACCEPTED_AT, now)
        } else {
          ONE_ACCEPTED_AT[0] = event.acceptedAt
          observer.sent(1, ONE_ACCEPTED_AT, now)
        }
      }
      this.#account()
      return
    }
    const frames: Rendered[] = []
    const acceptedAt: number[] = []
    const vouched = this.#vouch(events, options.since)
    let bytes = 0
    let i = 0
    for (; i < events.length && (options.final === true || bytes <= this.#highWater * 4); i++) {
      const event = events[i] as StreamEvent
      const rendered = this.#rendering(vouched[i] as StreamEvent, now)
      frames.push(rendered)
      if (event.acceptedAt !== undefined) acceptedAt.push(event.acceptedAt)
      bytes += rendered.wsBytes.length
    }
    if (options.heartbeat !== undefined) frames.push(options.heartbeat)
    if (frames.length === 1) this.#sink.writeOne(frames[0] as Rendered)
    else this.#sink.write(frames)
    this.sent += frames.length
    observer?.sent(frames.length, acceptedAt, now)
    if (i < events.length) {
      for (; i < events.length; i++) {
        const event = events[i] as StreamEvent
        this.#hold(event, options.since?.get(event.key))
      }
      this.#wakeAt(now + 1)
    }
    this.#account()
  }

  /**
   * The positions of `events`, written in this order, lowered to what the client holds
   * once it has each: below every state of its series later in the write or still held.
   */
  #vouch (events: readonly StreamEvent[], since: ReadonlyMap<string, number> | undefined): readonly StreamEvent[] {
    let heldFloor: Map<SeriesKey, number> | undefined
    if (this.#heldSince.size > 0) {
      heldFloor = new Map()
      for (const [key, rev] of this.#heldSince) {
        const series = this.#held?.get(key)?.series
        if (series !== undefined) heldFloor.set(series, Math.min(heldFloor.get(series) ?? Infinity, rev))
      }
    }
    return vouchInOrder(events, (event) => Math.min(event.since, since?.get(event.key) ?? Infinity), (series) => heldFloor?.get(series) ?? Infinity)
  }

  /**
   * What goes on the wire for `event`, which is being written: for a delta connection,
   * its delta when the state of its bucket this client received last is exactly the
   * delta's base, else the full state; either way the shared encoding of the event.
   */
  #rendering (event: StreamEvent, now: number): Rendered {
    const received = this.#received
    if (received === undefined) return event.render(now)
    const base = event.deltaBase
    const rendered = base !== undefined && received.get(event.key) === base ? event.renderDelta(now) : event.render(now)
    received.touch(event.key, event.bucket)
    return rendered
  }

  /** Holds `event` back: it replaces a waiting state of its bucket only if it is newer. */
  #hold (event: StreamEvent, since = Infinity): void {
    const held = this.#held ??= new Map()
    const waiting = held.get(event.key)
    this.#heldSince.set(event.key, Math.min(since, event.since, this.#heldSince.get(event.key) ?? Infinity))
    if (waiting === undefined || event.supersedes(waiting)) held.set(event.key, event)
  }

  /** True when a state of `event`'s bucket is already waiting (it keeps the newer of the two). */
  #replaceHeld (event: StreamEvent): boolean {
    const waiting = this.#held?.get(event.key)
    if (waiting === undefined) return false
    this.#heldSince.set(event.key, Math.min(event.since, this.#heldSince.get(event.key) ?? Infinity))
    if (event.supersedes(waiting)) this.#held?.set(event.key, event)
    this.#options.observer?.coalesced()
    return true
  }

  #wakeAt (at: number): void {
    if (at >= this.#dueAt) return
    this.#dueAt = at
    this.#scheduler.schedule(this, at)
  }

  /** Tells the gateway-wide budget how much this connection buffers, when that changed. */
  #account (): void {
    if (this.#options.onBuffered === undefined) return
    const bytes = this.#sink.bufferedAmount()
    if (bytes === this.#reportedBuffered) return
    this.#reportedBuffered = bytes
    this.#options.onBuffered(this, bytes)
  }
}

import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import * as ws from 'ws'
import { WebSocket } from 'ws'
import type { SeriesKey } from '../../../shared/timeseries/index.js'
import type { ConnectionObserver, Transport } from '../../metrics.js'
import { CLOSE_GRACE_MS, CLOSE_TEXT, CloseCode, type CloseReason, type Rendered, SSE_KEEP_ALIVE, SSE_RESTART, type StreamEvent } from './protocol.js'

/*
 * One client connection, whatever the engine and transport: the actor that writes what its
 * channels hand it or holds it back (backpressure, slow clients), the sink it writes
 * through, the gateway-wide scheduler of delayed work, and the per-connection flood guard.
 */

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

// ---- Scheduler

/** Due times are rounded up to this, so wake-ups due at nearly the same moment share one timer run. */
const SCHEDULER_GRANULARITY_MS = 2

/** Something the scheduler wakes: a channel with trailing sends, a backpressured connection. */
export interface Due {
  runDue: (now: number) => void
}

/**
 * The gateway-wide timer of delayed work: one timer for every channel and connection
 * instead of one each. Wake-ups due at nearly the same moment share one run, so the
 * trailing sends of channels that became due together leave in the same tick (and, corked,
 * in one write per socket).
 */
export class FlushScheduler {
  readonly #now: () => number
  readonly #due = new Map<number, Due[]>()
  #timer: NodeJS.Timeout | undefined
  #timerAt = Infinity

  constructor (now: () => number) {
    this.#now = now
  }

  /** Calls `target.runDue()` at `at` or soon after. */
  schedule (target: Due, at: number): void {
    const slot = Math.ceil(at / SCHEDULER_GRANULARITY_MS) * SCHEDULER_GRANULARITY_MS
    const list = this.#due.get(slot)
    if (list === undefined) this.#due.set(slot, [target])
    else list.push(target)
    if (slot < this.#timerAt) this.#arm(slot)
  }

  /** Stops the timer; pending wake-ups are dropped (at shutdown). */
  stop (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = Infinity
    this.#due.clear()
  }

  #arm (slot: number): void {
    clearTimeout(this.#timer)
    this.#timerAt = slot
    this.#timer = setTimeout(() => this.#run(), Math.max(0, slot - this.#now()))
    this.#timer.unref()
  }

  #run (): void {
    this.#timer = undefined
    this.#timerAt = Infinity
    const now = this.#now()
    const ready: number[] = []
    for (const slot of this.#due.keys()) if (slot <= now) ready.push(slot)
    ready.sort((a, b) => a - b)
    for (const slot of ready) {
      const targets = this.#due.get(slot) ?? []
      this.#due.delete(slot)
      for (const target of targets) target.runDue(now)
    }
    let next = Infinity
    for (const slot of this.#due.keys()) next = Math.min(next, slot)
    if (next !== Infinity && next < this.#timerAt) this.#arm(next)
  }
}

// ---- Connection actor

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
    for (const [key, event] of this.#held) if (series.has(event.series)) this.#held.delete(key)
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
    this.#held?.clear()
    // Event ids rise within a write.
    ready.sort((a, b) => a.time - b.time)
    const heartbeat = this.#heartbeat
    this.#heartbeat = undefined
    if (ready.length > 0 || heartbeat !== undefined) this.#write(ready, now, { final, heartbeat })
  }

  /**
   * Writes states that are due, with the heartbeat if one is waiting, in one write of at
   * most about four high-water marks (unless `final`); the rest of a longer list (a resume
   * replay, a backlog) is held back for the next writes.
   */
  #write (events: readonly StreamEvent[], now: number, options: { final?: boolean, heartbeat?: Rendered | undefined } = {}): void {
    const observer = this.#options.observer
    if (events.length === 1 && options.heartbeat === undefined) {
      // The fan-out path: one event, no allocation.
      const event = events[0] as StreamEvent
      this.#sink.writeOne(event.render(now))
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
    let bytes = 0
    let i = 0
    for (; i < events.length && (options.final === true || bytes <= this.#highWater * 4); i++) {
      const event = events[i] as StreamEvent
      const rendered = event.render(now)
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
      for (; i < events.length; i++) this.#hold(events[i] as StreamEvent)
      this.#wakeAt(now + 1)
    }
    this.#account()
  }

  /** Holds `event` back: it replaces a waiting state of its bucket only if it is newer. */
  #hold (event: StreamEvent): void {
    const held = this.#held ??= new Map()
    const waiting = held.get(event.key)
    if (waiting === undefined || event.supersedes(waiting)) held.set(event.key, event)
  }

  /** True when a state of `event`'s bucket is already waiting (it keeps the newer of the two). */
  #replaceHeld (event: StreamEvent): boolean {
    const waiting = this.#held?.get(event.key)
    if (waiting === undefined) return false
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

// ---- Sinks of the Fastify engine

/** Closes a `ws` socket with the code of `reason`, dropping it if the handshake stalls. */
export function closeWebSocket (socket: WebSocket, reason: CloseReason): void {
  socket.close(CloseCode[reason], CLOSE_TEXT[reason])
  setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref()
}

/** `ws` internals the sink reads: the TCP socket, and whether ws's own sender has a queue. */
interface WsInternals {
  _socket?: Socket
  _sender?: { _bufferedBytes: number }
}

/** ws's frame encoder (`Sender.frame`), which its type declarations leave out. */
const frame = (ws as unknown as { Sender: { frame: (data: Buffer, options: { fin: boolean, rsv1: boolean, opcode: number, mask: boolean, readOnly: boolean }) => Buffer[] } }).Sender.frame

/** The WebSocket text frame of `event`, built once and shared by every socket. */
function preparedFrame (event: Rendered): Buffer {
  event.wsFrame ??= Buffer.concat(frame(event.wsBytes, { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: true }))
  return event.wsFrame
}

/** Streams corked during this tick, uncorked together once the tick's events are written. */
const corked: Array<{ uncork: () => void }> = []

function uncorkAll (): void {
  for (const stream of corked) stream.uncork()
  corked.length = 0
}

/**
 * Corks `stream` until the end of the tick (once; later writes of the tick join it), so
 * events that reach a client in the same tick — a bus message with several buckets, a
 * burst — leave in one write instead of one system call each.
 */
function corkForTick (stream: { writableCorked: number, cork: () => void, uncork: () => void }): void {
  if (stream.writableCorked > 0) return
  stream.cork()
  if (corked.push(stream) === 1) process.nextTick(uncorkAll)
}

/**
 * A sink on a `ws` WebSocket. Each event is one message (SPEC §4), written as a prepared
 * frame straight to the TCP socket: the frame is built once per event, not once per
 * client. ws's sender is bypassed only while it has nothing queued (no compression, no
 * blobs), so frames keep their order. With `batch`, events ready together are a single
 * message holding a JSON array of them.
 */
export function wsSink (socket: WebSocket, batch: boolean): Sink {
  // `_socket` and `_sender` are internal to ws; reading them is what makes a shared frame possible.
  const internals = socket as unknown as WsInternals
  const tcp = internals._socket
  const sendOne = (event: Rendered): void => {
    if (tcp === undefined || internals._sender?._bufferedBytes !== 0) {
      socket.send(event.wsBytes, { binary: false })
      return
    }
    corkForTick(tcp)
    tcp.write(preparedFrame(event))
  }
  return {
    writeOne (event: Rendered): void {
      if (socket.readyState === WebSocket.OPEN) sendOne(event)
    },
    write (events: readonly Rendered[]): void {
      if (socket.readyState !== WebSocket.OPEN) return
      if (batch) {
        socket.send(`[${events.map((e) => e.ws).join(',')}]`)
        return
      }
      for (const event of events) sendOne(event)
    },
    bufferedAmount: () => socket.bufferedAmount,
    keepAlive: () => {},
    close: (reason) => closeWebSocket(socket, reason)
  }
}

/** Minimal writable side of an SSE response, so each engine can supply its own. */
export interface SseWriter {
  write: (chunk: Buffer | string) => void
  end: () => void
  destroy: () => void
  bufferedAmount: () => number
}

/** An SSE writer over a Node HTTP response; writes of one tick leave together. */
export function nodeSseWriter (res: ServerResponse): SseWriter {
  return {
    write: (chunk) => {
      if (res.writableEnded) return
      corkForTick(res)
      res.write(chunk)
    },
    end: () => { if (!res.writableEnded) res.end() },
    destroy: () => res.destroy(),
    bufferedAmount: () => res.writableLength
  }
}

/**
 * A sink on a Server-Sent Events stream: each event is its shared `id:`/`event:`/`data:`
 * block; events ready together are one write. A restart ends the stream after repeating
 * `retry:` so clients come straight back; a stalled client is cut off and reconnects on
 * its own.
 */
export function sseSink (writer: SseWriter): Sink {
  return {
    writeOne: (event) => writer.write(event.sse),
    write: (events) => writer.write(Buffer.concat(events.map((e) => e.sse))),
    bufferedAmount: writer.bufferedAmount,
    keepAlive: () => writer.write(SSE_KEEP_ALIVE),
    close (reason: CloseReason): void {
      if (reason === 'restart') {
        writer.write(SSE_RESTART)
        writer.end()
      } else {
        writer.destroy()
      }
    }
  }
}

// ---- Flood guard

export interface FloodGuardOptions {
  /** Messages allowed in a burst. */
  burst?: number
  /** Sustained messages per second. */
  perSecond?: number
  /** Messages dropped (over the rate) before the client is disconnected. */
  maxDropped?: number
}

/** What to do with one incoming client message. */
export type FloodVerdict = 'accept' | 'drop' | 'drop-and-warn' | 'disconnect'

/**
 * A token bucket per connection. Over the rate, messages are dropped (the first of each
 * second with a warning to the client); a client that keeps flooding is disconnected.
 */
export class FloodGuard {
  readonly #burst: number
  readonly #perMs: number
  readonly #maxDropped: number
  #tokens: number
  #refilledAt: number
  #dropped = 0
  #warnedAt = -Infinity

  constructor (now: number, options: FloodGuardOptions = {}) {
    this.#burst = options.burst ?? 50
    this.#perMs = (options.perSecond ?? 25) / 1000
    this.#maxDropped = options.maxDropped ?? 100
    this.#tokens = this.#burst
    this.#refilledAt = now
  }

  check (now: number): FloodVerdict {
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#refilledAt) * this.#perMs)
    this.#refilledAt = now
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      return 'accept'
    }
    this.#dropped++
    if (this.#dropped > this.#maxDropped) return 'disconnect'
    if (now - this.#warnedAt >= 1000) {
      this.#warnedAt = now
      return 'drop-and-warn'
    }
    return 'drop'
  }
}

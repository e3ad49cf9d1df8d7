import type { BucketEvent } from '../../../shared/ports/bus.js'
import { DeltaMemory } from '../../../shared/stream-delta.js'
import type { Bucket } from '../../../shared/timeseries/bucket.js'
import type { Resolution } from '../../../shared/timeseries/resolutions.js'
import type { SeriesCache } from '../series-cache.js'
import type { ConnectionActor } from './connection-actor.js'
import type { Due, FlushScheduler } from './flush-scheduler.js'
import { StreamEvent } from './protocol.js'
import { vouchInOrder } from './resume.js'

/** Buckets sent longer than a debounce ago are forgotten once a channel remembers this many. */
const PRUNE_AT = 32

/** Buckets whose last sent state a channel remembers as the base of the next one's delta. */
const DELTA_BASES = 64

export interface ChannelOptions {
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
export class Channel implements Due {
  readonly watchers = new Set<ConnectionActor>()
  ready: Promise<void>
  readonly #options: ChannelOptions
  /** When each bucket last went out, for buckets sent within the last debounce window. */
  readonly #sentAt = new Map<string, number>()
  /** The newest state of each bucket waiting for its trailing send. */
  readonly #waiting = new Map<string, StreamEvent>()
  /** The rev of the first state of each waiting bucket: watchers hold nothing of it from there on. */
  readonly #waitingSince = new Map<string, number>()
  /** The state of each bucket sent last (the most recently sent buckets): the base of its next delta. */
  readonly #lastSent = new DeltaMemory<Bucket>(DELTA_BASES)
  /** The newest series position the cache passed on. */
  #position = 0
  #pruneAt = PRUNE_AT
  #dueAt = Infinity
  #unwatch: (() => void) | undefined
  #closed = false

  constructor (cache: SeriesCache, ticker: string, resolution: Resolution, options: ChannelOptions) {
    this.#options = options
    this.ready = cache.watch(ticker, resolution, (event: BucketEvent, position: number) => {
      const at = options.now()
      this.#position = Math.max(this.#position, position)
      this.offer(StreamEvent.fromBus(event, at, position), at)
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
      this.#waitingSince.set(event.key, event.bucket.rev)
      this.#wakeAt(sentAt + this.#options.debounceMs)
      return
    }
    this.#remember(event.key, now)
    this.#deltaFrom(event)
    // Watchers do not hold what waits here: the position promises nothing from there on.
    if (this.#waitingSince.size > 0) event.position = Math.min(event.position, Math.max(0, this.#firstWaiting() - 1))
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
      due.push(event)
      // Sent now, at the series' newest position less what still waits, standing for
      // every state of its bucket that waited.
      event.position = this.#position
      event.since = Math.min(event.since, this.#waitingSince.get(key) ?? Infinity)
      this.#waitingSince.delete(key)
      this.#sentAt.set(key, now)
      this.#deltaFrom(event)
    }
    if (due.length > 1) due.sort((a, b) => a.bucket.rev - b.bucket.rev)
    const stillWaiting = this.#waitingSince.size > 0 ? this.#firstWaiting() : Infinity
    const vouched = vouchInOrder(due, (event) => event.since, () => stillWaiting)
    if (vouched.length > 0) for (const watcher of this.watchers) watcher.offer(vouched, now)
    if (next !== Infinity) this.#wakeAt(next)
  }

  close (): void {
    this.#closed = true
    this.#waiting.clear()
    this.#waitingSince.clear()
    this.#sentAt.clear()
    this.#lastSent.clear()
    this.#unwatch?.()
    this.#unwatch = undefined
  }

  /** `event` goes out now: its delta is against the state of its bucket sent before. */
  #deltaFrom (event: StreamEvent): void {
    event.deltaBase = this.#lastSent.get(event.key)
    this.#lastSent.touch(event.key, event.bucket)
  }

  /** The rev of the oldest state still waiting for its trailing send. */
  #firstWaiting (): number {
    let first = Infinity
    for (const rev of this.#waitingSince.values()) first = Math.min(first, rev)
    return first
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

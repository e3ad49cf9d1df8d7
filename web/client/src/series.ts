import { isNewerState } from '../../../shared/timeseries/revision.js'
import { PulseClientError } from './errors.js'
import { Emitter } from './emitter.js'
import type { Bucket, Resolution } from './types.js'

/** A subscription's state: waiting for its snapshot (or resume), live, refused, or closed. */
export type SubscriptionState = 'subscribing' | 'live' | 'failed' | 'closed'

export interface SubscriptionEvents {
  [name: string]: (...args: never[]) => void
  state: (state: SubscriptionState) => void
  /** A snapshot of one series of the subscription was handed out (first, or after a series was not recovered). */
  snapshot: (ticker: string, resolution: Resolution) => void
  error: (error: PulseClientError) => void
}

/** What a subscription wants of each of its series. */
export interface SubscribeOptions {
  /**
   * The history handed out first: `true` (the default) the resolution's whole retention,
   * `{ windowMs }` only that far back, `false` none (live states only).
   */
  snapshot?: boolean | { windowMs: number }
}

/** Buckets remembered per series for the merge rule, beyond which the oldest are forgotten. */
const MAX_HELD = 2000

/**
 * One `ticker#resolution` as the client watches it, shared by every subscription to it:
 * the last state handed out of each bucket (so none older is ever handed out: the one
 * merge rule, {@link isNewerState}), and live states held back while its snapshot is on
 * the way, so a snapshot always comes first.
 */
export class Series {
  readonly held = new Map<string, Bucket>()
  readonly subs = new Set<Subscription>()
  /** States that arrived while the snapshot was on its way, newest per bucket. */
  pending: Map<string, Bucket> | undefined
  /** Whether live states flow (the snapshot, if one was wanted, has been handed out). */
  synced = false
  /** The window of the last snapshot handed out. */
  syncedWindow = 0
  /** A snapshot is due at the next chance, even if the series is recovered. */
  needSnapshot = false
  /** The current connection carries the series (the gateway confirmed it). */
  acked = false

  constructor (readonly key: string, readonly ticker: string, readonly resolution: Resolution) {}

  /** The widest snapshot window its subscriptions want: 0 none, Infinity the whole retention. */
  get window (): number {
    let widest = 0
    for (const sub of this.subs) widest = Math.max(widest, sub.window)
    return widest
  }

  /** A live state arrived. */
  offer (bucket: Bucket): void {
    const pending = this.pending
    if (pending === undefined) this.hand(bucket)
    else if (isNewerState(bucket, pending.get(bucket.timestamp))) pending.set(bucket.timestamp, bucket)
  }

  /** Holds live states back until {@link applySnapshot}. */
  await (): void {
    this.pending ??= new Map()
  }

  /** Hands out the snapshot, merged with what arrived meanwhile, oldest bucket first. */
  applySnapshot (buckets: readonly Bucket[]): void {
    const merged = new Map<string, Bucket>()
    for (const bucket of [...buckets, ...this.pending?.values() ?? []]) {
      if (isNewerState(bucket, merged.get(bucket.timestamp))) merged.set(bucket.timestamp, bucket)
    }
    this.pending = undefined
    for (const bucket of [...merged.values()].sort((a, b) => a.timestamp < b.timestamp ? -1 : 1)) this.hand(bucket)
    this.synced = true
    for (const sub of this.subs) sub.seriesSynced(this, true)
  }

  /** Live states flow without a snapshot (none wanted, or the series was recovered). */
  flow (): void {
    const pending = this.pending
    this.pending = undefined
    for (const bucket of pending?.values() ?? []) this.hand(bucket)
    this.synced = true
    for (const sub of this.subs) sub.seriesSynced(this, false)
  }

  hand (bucket: Bucket): void {
    if (!isNewerState(bucket, this.held.get(bucket.timestamp))) return
    this.held.set(bucket.timestamp, bucket)
    if (this.held.size > MAX_HELD) {
      for (const old of [...this.held.keys()].sort().slice(0, this.held.size - MAX_HELD)) this.held.delete(old)
    }
    for (const sub of this.subs) sub.deliver(bucket)
  }
}

/**
 * Tickers × resolutions as one caller watches them: every new state of every bucket goes
 * to its `onBucket`, the snapshot first. Resume, fallback and reconnection happen beneath
 * it; it only reports a refusal (`error`) and whether it is live.
 */
export class Subscription extends Emitter<SubscriptionEvents> {
  state: SubscriptionState = 'subscribing'
  /** Resolves once every series is live (its snapshot handed out); rejects when the gateway refuses it. */
  readonly ready: Promise<void>
  /** @internal */
  readonly window: number
  #settle!: (error?: PulseClientError) => void

  /** @internal */
  constructor (
    readonly ticker: string,
    readonly resolutions: readonly Resolution[],
    private readonly onBucket: (bucket: Bucket) => void,
    options: SubscribeOptions,
    private readonly release: (sub: Subscription) => void
  ) {
    super()
    const snapshot = options.snapshot ?? true
    this.window = snapshot === true ? Infinity : snapshot === false ? 0 : snapshot.windowMs
    this.ready = new Promise((resolve, reject) => {
      this.#settle = (error) => error === undefined ? resolve() : reject(error)
    })
    // Nobody may be waiting on it; an unhandled refusal would crash Node.
    this.ready.catch(() => {})
  }

  /** Stops watching; no more buckets are handed out. */
  close (): void {
    if (this.state === 'closed') return
    this.#set('closed')
    this.release(this)
  }

  /** @internal */
  deliver (bucket: Bucket): void {
    if (this.state !== 'closed' && this.state !== 'failed') this.onBucket(bucket)
  }

  /** @internal */
  seriesSynced (series: Series, snapshot: boolean): void {
    if (snapshot) this.emit('snapshot', series.ticker, series.resolution)
    if (this.state !== 'subscribing') return
    for (const r of this.resolutions) if (this.#series.get(r)?.synced !== true) return
    this.#set('live')
    this.#settle()
  }

  /** @internal the series it watches, by resolution */
  readonly #series = new Map<Resolution, Series>()

  /** @internal */
  attach (series: Series): void {
    this.#series.set(series.resolution, series)
    series.subs.add(this)
    // Joining a series already watched: what it holds is this subscription's snapshot.
    if (series.synced) {
      for (const bucket of [...series.held.values()].sort((a, b) => a.timestamp < b.timestamp ? -1 : 1)) this.deliver(bucket)
      this.seriesSynced(series, this.window > 0)
    }
  }

  /** @internal */
  fail (error: PulseClientError): void {
    if (this.state === 'closed' || this.state === 'failed') return
    this.#set('failed')
    this.emit('error', error)
    this.#settle(error)
    this.release(this)
  }

  #set (state: SubscriptionState): void {
    this.state = state
    this.emit('state', state)
  }
}

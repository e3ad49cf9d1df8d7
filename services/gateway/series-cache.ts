import { LRUCache } from 'lru-cache'
import pLimit from 'p-limit'
import { PulseError } from '../../shared/errors.js'
import { ArchiveBreaker } from './archive-breaker.js'
import type { Archive } from '../../shared/ports/archive.js'
import type { BucketEvent, Bus, Unsubscribe } from '../../shared/ports/bus.js'
import type { HotState } from '../../shared/ports/hot-state.js'
import { type Bucket } from '../../shared/timeseries/bucket.js'
import { MAX_FUTURE_MS } from '../../shared/timeseries/item.js'
import { type SeriesKey, seriesKey } from '../../shared/timeseries/keys.js'
import { type Resolution, bucketStart, DURATION_MS, isRetained, RETENTION_MS } from '../../shared/timeseries/resolutions.js'
import { isNewerState } from '../../shared/timeseries/revision.js'
import { eventProblem } from './bus-event-check.js'
import { SeriesPosition } from './series-position.js'

/** Defaults of {@link SeriesCacheOptions}. */
export const SERIES_CACHE_DEFAULTS = {
  idleMs: 300_000,
  lingerMs: 5000,
  maxBuckets: 200_000,
  sweepMs: 30_000
} as const

/** Series reloaded from the hot state at once during a resync. */
const RESYNC_CONCURRENCY = 8
/** First pause before a resync retries the series whose hot-state read failed; doubles up to the cap. */
const RESYNC_RETRY_MS = 250
const RESYNC_RETRY_CAP_MS = 10_000

export interface SeriesCacheOptions {
  hot: HotState
  archive: Archive
  bus: Bus
  now: () => number
  /** A series nobody watches and nobody read for this long drops its bus subscription and memory. */
  idleMs?: number
  /** How long a series' bus subscription outlives its last watcher (`SUBSCRIPTION_LINGER_MS`). */
  lingerMs?: number
  /** Budget of buckets held over all series (`SERIES_CACHE_MAX_BUCKETS`); least recently used windows go first. */
  maxBuckets?: number
  /** Interval of the sweep that drops idle series. */
  sweepMs?: number
  onError?: (err: unknown, series: SeriesKey) => void
  /** A bus message failed validation and was dropped. */
  onInvalidEvent?: (problem: string, series: SeriesKey) => void
  /** Guards archive reads (deadline and circuit breaker); default {@link ArchiveBreaker} with its defaults. */
  breaker?: ArchiveBreaker
}

/**
 * Hears each bucket event of a watched series, with the series' position after it: every
 * state of the series up to that rev has been passed to the watchers (or, for states
 * before they started watching, is in what a read of the series answers).
 */
export type SeriesListener = (event: BucketEvent, position: number) => void

interface Entry {
  readonly key: SeriesKey
  readonly ticker: string
  readonly resolution: Resolution
  readonly buckets: Map<number, Bucket>
  sorted: Bucket[] | undefined
  /** When the whole retained window was last loaded; 0 while it is not (never, or evicted). */
  refreshedAt: number
  lastRead: number
  /** The load in flight; resolves to the window it loaded (the entry itself may be evicted by then). */
  refreshing: Promise<readonly Bucket[]> | undefined
  /** The bus subscription, once asked for; settles when it is active. */
  subscription: Promise<Unsubscribe> | undefined
  readonly watchers: Set<SeriesListener>
  /** Pending release of the subscription after the last watcher left. */
  linger: NodeJS.Timeout | undefined
  /** The series' position: the cache has held (and passed on) every state up to it. */
  readonly position: SeriesPosition
  /** Bus messages that came during the first load: they wait for the position it vouches for. */
  early: unknown[]
}

export interface SeriesView {
  /** Every retained bucket of the series, ascending by start. */
  buckets: readonly Bucket[]
  /** True when the answer came from memory without touching the stores. */
  hit: boolean
  /** False when the archive did not answer: only the buckets the hot state holds are here. */
  complete: boolean
  /** The series' position when it was read: every state up to this rev is in `buckets` or was replaced by a newer one that is. */
  position: number
}

/**
 * Revalidation interval per resolution: the bus keeps a watched series current (and a
 * resync repairs what a dropped bus connection lost), and this bounds staleness of a
 * series that is only read. Longer buckets change less often, so they may be trusted longer.
 */
export function revalidateMs (resolution: Resolution): number {
  return Math.min(60_000, Math.max(15_000, DURATION_MS[resolution] / 4))
}

/**
 * The gateway's L1 cache and the edge where bus messages enter it. Each series that is
 * read or watched has an entry: its bus subscription (held while it has watchers, for
 * `lingerMs` after the last one leaves, and while it was read within `idleMs`) and the
 * buckets it knows. A read loads the whole retained window from the hot state and the
 * archive once (concurrent misses share one load); the bus keeps it current.
 *
 * Memory is bounded: the buckets of all series together stay within `maxBuckets` (an LRU
 * over series windows, each weighing its bucket count; an evicted window is reloaded on
 * its next read), every series is pruned to its retention as events arrive, and a timer
 * drops idle series with their subscriptions.
 *
 * Delivery heals itself: every bus message is validated (a bad one is dropped and
 * reported), a bucket state older than the one held is never passed on, and when the bus
 * reports that messages may have been lost, every subscribed series is reloaded from the
 * hot state and what changed is passed to its watchers as ordinary events.
 */
export class SeriesCache {
  readonly #options: SeriesCacheOptions
  readonly #idleMs: number
  readonly #lingerMs: number
  readonly #breaker: ArchiveBreaker
  readonly #series = new Map<SeriesKey, Entry>()
  /** Series whose buckets count against the budget; eviction empties an entry, it does not drop it. */
  readonly #windows: LRUCache<SeriesKey, Entry>
  readonly #sweeper: NodeJS.Timeout
  readonly #stopResync: () => void
  readonly #stopLoss: () => void
  #closed = false
  hits = 0
  misses = 0
  /** Loads from the stores (concurrent misses of one series count once). */
  loads = 0
  /** Bus messages dropped because they failed validation. */
  invalidEvents = 0
  /** Resyncs after a bus reconnect, and the bucket states they found missing. */
  resyncs = 0
  resynced = 0
  /** Series windows emptied to stay within the bucket budget. */
  evictions = 0

  constructor (options: SeriesCacheOptions) {
    this.#options = options
    this.#idleMs = options.idleMs ?? SERIES_CACHE_DEFAULTS.idleMs
    this.#lingerMs = options.lingerMs ?? SERIES_CACHE_DEFAULTS.lingerMs
    this.#breaker = options.breaker ?? new ArchiveBreaker()
    this.#windows = new LRUCache<SeriesKey, Entry>({
      maxSize: options.maxBuckets ?? SERIES_CACHE_DEFAULTS.maxBuckets,
      sizeCalculation: (entry) => Math.max(1, entry.buckets.size),
      dispose: (entry, _key, reason) => { if (reason !== 'delete') this.#unload(entry) }
    })
    this.#sweeper = setInterval(() => { this.sweep().catch(() => {}) }, options.sweepMs ?? SERIES_CACHE_DEFAULTS.sweepMs)
    this.#sweeper.unref()
    this.#stopResync = options.bus.onResync(() => { this.resync().catch(() => {}) })
    this.#stopLoss = options.bus.onLoss(() => {
      for (const entry of this.#series.values()) entry.position.doubt()
    })
  }

  /** The retained buckets of a series, loading it on first use. */
  async read (ticker: string, resolution: Resolution): Promise<SeriesView> {
    const entry = this.#entry(ticker, resolution)
    const now = this.#options.now()
    entry.lastRead = now
    if (entry.refreshedAt === 0) {
      this.misses++
      const buckets = await this.#refresh(entry)
      return { buckets, hit: false, complete: entry.refreshedAt !== 0, position: entry.position.value }
    }
    if (now - entry.refreshedAt > revalidateMs(resolution)) this.#refresh(entry).catch(() => {})
    this.hits++
    return { buckets: this.#sorted(entry, now), hit: true, complete: true, position: entry.position.value }
  }

  /**
   * The series as the hot state holds it now: a read of the hot state merged into the cache
   * (newer states go to the watchers), then the cache's view. For a resume from a position
   * this gateway has not reached yet — another gateway's bus messages came in first.
   */
  async readCurrent (ticker: string, resolution: Resolution): Promise<SeriesView> {
    const entry = this.#entry(ticker, resolution)
    await this.#subscribe(entry)
    await this.#resyncOne(entry, false)
    return await this.read(ticker, resolution)
  }

  /** Latest known state of one bucket of a loaded series. */
  peek (ticker: string, resolution: Resolution, start: number): Bucket | undefined {
    return this.#series.get(seriesKey(ticker, resolution))?.buckets.get(start)
  }

  /**
   * Watches a series: `listener` gets each bucket event after the cache applied it (never
   * a state older than one already passed on), with the series' position. The series stays
   * subscribed while it has watchers and `lingerMs` after the last one left, so a quick
   * resubscribe costs nothing.
   */
  async watch (ticker: string, resolution: Resolution, listener: SeriesListener): Promise<() => void> {
    const entry = this.#entry(ticker, resolution)
    entry.watchers.add(listener)
    clearTimeout(entry.linger)
    entry.linger = undefined
    try {
      await this.#subscribe(entry)
    } catch (err) {
      this.#unwatch(entry, listener)
      throw err
    }
    // A position is vouched for from the first load on: a series watched before anyone read it is loaded now.
    if (!entry.position.vouched && entry.refreshing === undefined) this.#refresh(entry).catch(() => {})
    let watching = true
    return () => {
      if (!watching) return
      watching = false
      this.#unwatch(entry, listener)
    }
  }

  /** The breaker guarding this gateway's archive reads (shared with the tickers listing). */
  get archiveBreaker (): ArchiveBreaker {
    return this.#breaker
  }

  /** Series currently held (watched, lingering, or read within `idleMs`). */
  get size (): number {
    return this.#series.size
  }

  /** Buckets held over all series, the quantity `maxBuckets` bounds. */
  get bucketCount (): number {
    return this.#windows.calculatedSize
  }

  /** Series with a bus subscription (asked for or active). */
  get subscriptions (): number {
    let count = 0
    for (const entry of this.#series.values()) if (entry.subscription !== undefined) count++
    return count
  }

  /** Drops series nobody watches and nobody read for `idleMs`, with their subscriptions; prunes the rest to retention. Runs on a timer. */
  async sweep (): Promise<void> {
    const now = this.#options.now()
    const idle: Entry[] = []
    for (const entry of this.#series.values()) {
      if (this.#isIdle(entry, now)) idle.push(entry)
      else if (this.#prune(entry, now)) this.#resize(entry)
    }
    await Promise.all(idle.map(async (entry) => await this.#drop(entry)))
  }

  /**
   * Reloads every subscribed series from the hot state and passes each bucket state newer
   * than the one held to its watchers. Called when the bus may have lost messages; a
   * series whose read fails is retried, with a growing pause, until it succeeds, the series
   * is no longer watched or the cache closes — a watched series nobody reads over REST
   * would otherwise keep what the bus lost.
   */
  async resync (): Promise<void> {
    this.resyncs++
    const limit = pLimit(RESYNC_CONCURRENCY)
    let pending = [...this.#series.values()].filter((entry) => entry.subscription !== undefined)
    for (let attempt = 0; pending.length > 0 && !this.#closed; attempt++) {
      const failed: Entry[] = []
      await Promise.all(pending.map(async (entry) => await limit(async () => {
        if (this.#series.get(entry.key) !== entry || entry.subscription === undefined) return
        try {
          await this.#resyncOne(entry)
        } catch (err) {
          this.#options.onError?.(err, entry.key)
          // Not current until repaired: a read in the meantime loads the window again.
          entry.refreshedAt = 0
          failed.push(entry)
        }
      })))
      pending = failed
      if (pending.length > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(RESYNC_RETRY_MS * 2 ** attempt, RESYNC_RETRY_CAP_MS)).unref())
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#sweeper)
    this.#stopResync()
    this.#stopLoss()
    const entries = [...this.#series.values()]
    await Promise.all(entries.map(async (entry) => await this.#drop(entry)))
  }

  #entry (ticker: string, resolution: Resolution): Entry {
    const key = seriesKey(ticker, resolution)
    let entry = this.#series.get(key)
    if (entry === undefined) {
      entry = {
        key,
        ticker,
        resolution,
        buckets: new Map(),
        sorted: undefined,
        refreshedAt: 0,
        lastRead: 0,
        refreshing: undefined,
        subscription: undefined,
        watchers: new Set(),
        linger: undefined,
        position: new SeriesPosition(),
        early: []
      }
      this.#series.set(key, entry)
    }
    return entry
  }

  #isIdle (entry: Entry, now: number): boolean {
    return entry.watchers.size === 0 && entry.linger === undefined && entry.refreshing === undefined && now - entry.lastRead >= this.#idleMs
  }

  #unwatch (entry: Entry, listener: SeriesListener): void {
    entry.watchers.delete(listener)
    if (entry.watchers.size > 0 || this.#series.get(entry.key) !== entry) return
    clearTimeout(entry.linger)
    entry.linger = setTimeout(() => {
      entry.linger = undefined
      // A series read recently keeps serving history from memory until the sweep finds it idle.
      if (this.#isIdle(entry, this.#options.now())) this.#drop(entry).catch((err: unknown) => this.#options.onError?.(err, entry.key))
    }, this.#lingerMs)
    entry.linger.unref()
  }

  /** Forgets a series: its buckets, its place in the budget and its bus subscription. */
  async #drop (entry: Entry): Promise<void> {
    if (this.#series.get(entry.key) !== entry) return
    this.#series.delete(entry.key)
    this.#windows.delete(entry.key)
    clearTimeout(entry.linger)
    entry.linger = undefined
    entry.buckets.clear()
    entry.sorted = undefined
    const subscription = entry.subscription
    entry.subscription = undefined
    if (subscription !== undefined) await (await subscription.catch(() => async () => {}))()
  }

  /** Evicted from the budget: the series keeps its watchers and subscription, and reloads on its next read. */
  #unload (entry: Entry): void {
    this.evictions++
    entry.buckets.clear()
    entry.sorted = undefined
    entry.refreshedAt = 0
  }

  async #subscribe (entry: Entry): Promise<void> {
    if (entry.subscription === undefined) {
      const subscription = this.#options.bus.subscribe(entry.key, (event) => this.#receive(entry, event))
      entry.subscription = subscription
      subscription.catch(() => { if (entry.subscription === subscription) entry.subscription = undefined })
    }
    await entry.subscription
  }

  /** A message from the bus: input from another process, validated before anything uses it. */
  #receive (entry: Entry, event: unknown): void {
    if (this.#series.get(entry.key) !== entry) return
    // Until the first load vouches for a position, an event could only promise none (0).
    if (!entry.position.vouched && entry.refreshing !== undefined) {
      entry.early.push(event)
      return
    }
    const problem = eventProblem(entry, event)
    if (problem !== undefined) {
      this.invalidEvents++
      this.#options.onInvalidEvent?.(problem, entry.key)
      return
    }
    const valid = event as BucketEvent
    if (!isRetained(valid.bucket.start, entry.resolution, this.#options.now())) return
    const current = entry.buckets.get(valid.bucket.start)
    // An older state (a message from before the last resync or load) would take a client backwards.
    if (current !== undefined && isNewerState(current, valid.bucket)) return
    if (isNewerState(valid.bucket, current)) this.#store(entry, valid.bucket)
    entry.position.heard(valid.bucket.rev, valid.lastAtRev === true)
    this.#notify(entry, valid)
  }

  #notify (entry: Entry, event: BucketEvent): void {
    for (const watcher of entry.watchers) {
      try {
        watcher(event, entry.position.value)
      } catch (err) {
        this.#options.onError?.(err, entry.key)
      }
    }
  }

  /** Keeps `bucket` when it is newer than the state held; true when it was kept. */
  #merge (entry: Entry, bucket: Bucket): boolean {
    const current = entry.buckets.get(bucket.start)
    if (!isNewerState(bucket, current)) return false
    this.#store(entry, bucket)
    return true
  }

  #store (entry: Entry, bucket: Bucket): void {
    const isNew = !entry.buckets.has(bucket.start)
    entry.buckets.set(bucket.start, bucket)
    entry.sorted = undefined
    // A series that is watched but never read would otherwise keep every bucket it heard of.
    if (isNew) this.#prune(entry, this.#options.now())
    this.#resize(entry)
  }

  /**
   * Tells the budget the entry's weight changed (which may evict the least recently used
   * windows). lru-cache weighs an entry when it is set with a new value only, hence the
   * delete first (a `delete` disposal leaves the entry's buckets alone).
   */
  #resize (entry: Entry): void {
    if (this.#series.get(entry.key) !== entry) return
    this.#windows.delete(entry.key)
    this.#windows.set(entry.key, entry)
  }

  /** Drops buckets past their retention; true when any went. */
  #prune (entry: Entry, now: number): boolean {
    let pruned = false
    for (const start of entry.buckets.keys()) {
      if (!isRetained(start, entry.resolution, now)) {
        entry.buckets.delete(start)
        pruned = true
      }
    }
    if (pruned) entry.sorted = undefined
    return pruned
  }

  /**
   * The hot state's view of a series after a bus outage; newer states go to the watchers,
   * and once they have, the series' position takes the read's (the read is atomic and
   * follows the restored subscription, so it holds every state up to its newest rev).
   */
  async #resyncOne (entry: Entry, afterLoss = true): Promise<void> {
    const { from, to } = this.#window(entry.resolution)
    const buckets = await this.#options.hot.range(entry.ticker, entry.resolution, from, to)
    if (this.#series.get(entry.key) !== entry) return
    for (const bucket of buckets) {
      if (!this.#merge(entry, bucket)) continue
      if (afterLoss) this.resynced++
      this.#notify(entry, { kind: 'change', bucket })
    }
    // Only the resync that follows a restored subscription ends the doubt about the bus.
    if (afterLoss) entry.position.resynced()
    entry.position.read(buckets)
  }

  #window (resolution: Resolution): { from: number, to: number } {
    const now = this.#options.now()
    return {
      from: bucketStart(now - RETENTION_MS[resolution], resolution) - DURATION_MS[resolution],
      to: bucketStart(now + MAX_FUTURE_MS, resolution) + DURATION_MS[resolution]
    }
  }

  /**
   * Loads the retained window from both tiers; the newer rev of a bucket wins. The archive
   * read is guarded by the breaker: an archive that is down or late costs at most the
   * breaker's deadline, then nothing while it stays open. On a
   * revalidation (the window was loaded before), states the bus did not bring are passed
   * to the watchers. The hot state is the only tier that holds the newest states, so when
   * it does not answer the read fails (503) rather than answer with what the archive has.
   */
  async #refresh (entry: Entry): Promise<readonly Bucket[]> {
    if (entry.refreshing !== undefined) return await entry.refreshing
    this.loads++
    const revalidating = entry.refreshedAt !== 0
    entry.refreshing = (async () => {
      // Subscribe first, so a change that lands during the load is not missed.
      await this.#subscribe(entry)
      const now = this.#options.now()
      const { ticker, resolution } = entry
      const { from, to } = this.#window(resolution)
      const [archived, hot] = await Promise.allSettled([
        this.#breaker.run(async () => await this.#options.archive.range(ticker, resolution, from, to, now)),
        this.#options.hot.range(ticker, resolution, from, to)
      ])
      if (hot.status === 'rejected') {
        this.#options.onError?.(hot.reason, entry.key)
        throw new PulseError('PULSE_ERR_UNAVAILABLE', 'History is unavailable: the hot state did not answer; retry later')
      }
      if (archived.status === 'fulfilled') for (const bucket of archived.value) this.#merge(entry, bucket)
      for (const bucket of hot.value) {
        if (this.#merge(entry, bucket) && revalidating) this.#notify(entry, { kind: 'change', bucket })
      }
      entry.position.read(hot.value)
      if (archived.status === 'fulfilled') {
        entry.refreshedAt = now
      } else {
        // The archive is down: serve what the hot state holds (the recent buckets), and
        // leave the series unloaded so the next read tries the archive again.
        this.#options.onError?.(archived.reason, entry.key)
      }
      const window = this.#sorted(entry, now)
      this.#resize(entry)
      return window
    })()
    try {
      return await entry.refreshing
    } finally {
      entry.refreshing = undefined
      const early = entry.early.splice(0)
      for (const event of early) this.#receive(entry, event)
    }
  }

  #sorted (entry: Entry, now: number): Bucket[] {
    if (entry.sorted === undefined) {
      this.#prune(entry, now)
      entry.sorted = [...entry.buckets.values()].sort((a, b) => a.start - b.start)
    }
    return entry.sorted
  }
}

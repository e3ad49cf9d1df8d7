import type { ConnectionState, PulseClient } from './client.js'
import type { SubscribeOptions, Subscription } from './series.js'
import type { Bucket, Resolution } from './types.js'

/** What a {@link SeriesStore} holds: the buckets of each series, oldest first, and the connection state. */
export interface SeriesSnapshot {
  state: ConnectionState
  /** `TICKER#resolution` → buckets ascending by start; a new array whenever the series changed. */
  series: ReadonlyMap<string, readonly Bucket[]>
}

/**
 * A framework-neutral store over one client: `subscribe(listener)` and `getSnapshot()`,
 * the pair React's `useSyncExternalStore` takes, Svelte and Vue wrap in a line. The
 * snapshot is immutable and replaced on every change, so identity comparison detects it.
 *
 * ```ts
 * const store = new SeriesStore(client)
 * store.watch('AAPL', ['1m'])
 * const view = useSyncExternalStore(store.subscribe, store.getSnapshot)
 * ```
 */
export class SeriesStore {
  #snapshot: SeriesSnapshot
  readonly #listeners = new Set<() => void>()
  readonly #subs = new Map<string, Subscription>()
  readonly #off: () => void

  constructor (private readonly client: PulseClient) {
    this.#snapshot = { state: client.state, series: new Map() }
    this.#off = client.on('state', (state) => this.#publish({ ...this.#snapshot, state }))
  }

  /** Starts watching `ticker` at `resolutions` (again is a no-op); returns the function that stops. */
  watch (ticker: string, resolutions: readonly Resolution[], options?: SubscribeOptions): () => void {
    const id = `${ticker}@${resolutions.join()}`
    if (!this.#subs.has(id)) this.#subs.set(id, this.client.subscribe(ticker, resolutions, (bucket) => this.#apply(bucket), options))
    return () => {
      this.#subs.get(id)?.close()
      this.#subs.delete(id)
    }
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  readonly getSnapshot = (): SeriesSnapshot => this.#snapshot

  /** Stops every watch and stops listening to the client (the client stays open). */
  close (): void {
    for (const sub of this.#subs.values()) sub.close()
    this.#subs.clear()
    this.#off()
  }

  #apply (bucket: Bucket): void {
    const key = `${bucket.ticker}#${bucket.resolution}`
    const buckets = [...this.#snapshot.series.get(key) ?? []]
    // The client hands out only newer states, so a bucket either replaces its own start or is inserted.
    const at = buckets.findIndex((b) => b.timestamp >= bucket.timestamp)
    if (at < 0) buckets.push(bucket)
    else buckets.splice(at, buckets[at]?.timestamp === bucket.timestamp ? 1 : 0, bucket)
    const series = new Map(this.#snapshot.series)
    series.set(key, buckets)
    this.#publish({ ...this.#snapshot, series })
  }

  #publish (snapshot: SeriesSnapshot): void {
    this.#snapshot = snapshot
    for (const listener of this.#listeners) listener()
  }
}

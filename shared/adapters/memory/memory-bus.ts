import type { BucketEvent, BucketListener, Bus, ResyncListener, Unsubscribe } from '../../ports/index.js'
import { type SeriesKey, seriesKey } from '../../timeseries/index.js'

/** In-process pub/sub for embedded mode. Listeners run on a later tick, as over a network. */
export class MemoryBus implements Bus {
  readonly #listeners = new Map<string, Set<BucketListener>>()

  async publish (events: BucketEvent[]): Promise<void> {
    for (const event of events) {
      const listeners = this.#listeners.get(seriesKey(event.bucket.ticker, event.bucket.resolution))
      if (listeners === undefined) continue
      for (const listener of listeners) queueMicrotask(() => listener(event))
    }
  }

  async subscribe (series: SeriesKey, listener: BucketListener): Promise<Unsubscribe> {
    let listeners = this.#listeners.get(series)
    if (listeners === undefined) {
      listeners = new Set()
      this.#listeners.set(series, listeners)
    }
    listeners.add(listener)
    return async () => {
      listeners.delete(listener)
      if (listeners.size === 0) this.#listeners.delete(series)
    }
  }

  /** In process nothing is ever lost, so there is never a reason to resync. */
  onResync (_listener: ResyncListener): () => void {
    return () => {}
  }

  /** Number of series with at least one listener. */
  get channelCount (): number {
    return this.#listeners.size
  }

  async ping (): Promise<void> {}

  async close (): Promise<void> {
    this.#listeners.clear()
  }
}

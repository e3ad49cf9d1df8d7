import type { BucketEvent, BucketListener, Bus, LossListener, ResyncListener, Unsubscribe } from '../../ports/bus.js'
import { type SeriesKey, seriesKey } from '../../timeseries/keys.js'

/** In-process pub/sub for embedded mode. Listeners run on a later tick, as over a network. */
export class MemoryBus implements Bus {
  readonly #listeners = new Map<string, Set<BucketListener>>()

  async publish (events: BucketEvent[]): Promise<void> {
    this.deliver(events)
  }

  /**
   * Publishes at once, synchronously: the memory hot state calls it inside its fold, so
   * events leave in fold order. Listeners still run on a later tick, in that order.
   */
  deliver (events: readonly BucketEvent[]): void {
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

  /** Nor is anything ever lost on the way. */
  onLoss (_listener: LossListener): () => void {
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

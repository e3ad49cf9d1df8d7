import type { BucketEvent, BucketListener, Bus, LossListener, ResyncListener, Unsubscribe } from '../../ports/bus.js'
import { type SeriesKey, seriesKey } from '../../timeseries/keys.js'
import { decodeBusMessage, encodeBusMessage } from './bus-message.js'
import type { RedisClusterOptions } from './connection.js'
import { openPubSub, type PubSubTransport } from './pubsub-transport.js'

export interface RedisBusOptions {
  url: string
  /** Set: `url` is a seed node of a Redis Cluster, and the bus uses sharded pub/sub. */
  cluster?: RedisClusterOptions | undefined
  /** `PULSE_ENV`: channels are `pulse:<env>:ch:TICKER#res` (on a cluster `pulse:<env>:{TICKER}:ch:TICKER#res`). */
  env: string
  /** Called when a message cannot be parsed or a listener throws. */
  onError?: (error: unknown) => void
}

interface Channel {
  listeners: Set<BucketListener>
  /** Settles once Redis confirmed the SUBSCRIBE. */
  ready: Promise<unknown>
}

/**
 * The event a message carries, decoded with the bucket codec (see bus-message.ts). Not
 * validated here: listeners validate what they receive (see BucketListener). A message in
 * the JSON object form that versions before the wire format published (a worker not yet
 * upgraded) reaches them parsed, and anything else as its text, so that they check and
 * count it too.
 */
function readMessage (message: string): BucketEvent {
  const event = decodeBusMessage(message)
  if (event !== undefined) return event
  try {
    const parsed: unknown = JSON.parse(message)
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as BucketEvent
  } catch {}
  return message as unknown as BucketEvent
}

/**
 * Pub/sub over Redis (see {@link PubSubTransport}: classic on a single node, sharded on a
 * cluster): one connection publishes, a dedicated one subscribes. Channels are
 * reference-counted per series; ioredis re-subscribes every channel after a reconnect, and
 * resync listeners hear of it once those subscriptions are active again.
 */
export class RedisBus implements Bus {
  readonly #transport: PubSubTransport
  readonly #channels = new Map<string, Channel>()
  readonly #onError: (error: unknown) => void
  readonly #resyncListeners = new Set<ResyncListener>()
  readonly #lossListeners = new Set<LossListener>()

  constructor (options: RedisBusOptions) {
    this.#onError = options.onError ?? (() => {})
    this.#transport = openPubSub(options, options.env, this.#onError)
    this.#transport.onMessage((channel, message) => this.#deliver(channel, message))
    this.#transport.onResubscribed(() => this.#tell(this.#resyncListeners))
    this.#transport.onLost(() => this.#tell(this.#lossListeners))
  }

  #tell (listeners: ReadonlySet<() => void>): void {
    for (const listener of listeners) {
      try {
        listener()
      } catch (error) {
        this.#onError(error)
      }
    }
  }

  onResync (listener: ResyncListener): () => void {
    this.#resyncListeners.add(listener)
    return () => { this.#resyncListeners.delete(listener) }
  }

  onLoss (listener: LossListener): () => void {
    this.#lossListeners.add(listener)
    return () => { this.#lossListeners.delete(listener) }
  }

  /** Calls `listener` on each reconnection attempt of the publishing or the subscribing connection (metrics). */
  onReconnecting (listener: (connection: 'pub' | 'sub') => void): void {
    this.#transport.onReconnecting(listener)
  }

  async publish (events: BucketEvent[]): Promise<void> {
    if (events.length === 0) return
    await this.#transport.publish(events.map((event) => [
      this.#transport.channel(seriesKey(event.bucket.ticker, event.bucket.resolution)),
      encodeBusMessage(event)
    ] as const))
  }

  async subscribe (series: SeriesKey, listener: BucketListener): Promise<Unsubscribe> {
    const name = this.#transport.channel(series)
    let channel = this.#channels.get(name)
    if (channel === undefined) {
      channel = { listeners: new Set(), ready: this.#transport.subscribe(name) }
      this.#channels.set(name, channel)
    }
    const entry = channel
    // Wrapped so the same function may listen twice and be removed once per subscribe.
    const own: BucketListener = (event) => listener(event)
    entry.listeners.add(own)
    try {
      await entry.ready
    } catch (error) {
      this.#leave(name, entry, own)
      throw error
    }
    let left = false
    return async () => {
      if (left) return
      left = true
      await this.#leave(name, entry, own)
    }
  }

  /** Number of channels this bus is subscribed to. */
  get channelCount (): number {
    return this.#channels.size
  }

  async ping (): Promise<void> {
    await this.#transport.ping()
    if (!this.#transport.subscriberReady) throw new Error('the subscriber connection is not ready')
  }

  async close (): Promise<void> {
    this.#channels.clear()
    this.#resyncListeners.clear()
    await this.#transport.close()
  }

  async #leave (name: string, channel: Channel, listener: BucketListener): Promise<void> {
    channel.listeners.delete(listener)
    if (channel.listeners.size > 0 || this.#channels.get(name) !== channel) return
    this.#channels.delete(name)
    // A later subscribe of the same series queues its SUBSCRIBE behind this on one connection.
    if (this.#transport.subscriberReady) await this.#transport.unsubscribe(name)
    else this.#transport.unsubscribe(name).catch(this.#onError)
  }

  #deliver (name: string, message: string): void {
    const channel = this.#channels.get(name)
    if (channel === undefined) return
    const event = readMessage(message)
    for (const listener of channel.listeners) {
      try {
        listener(event)
      } catch (error) {
        this.#onError(error)
      }
    }
  }
}

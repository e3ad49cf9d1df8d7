import { Redis } from 'ioredis'
import type { BucketEvent, BucketListener, Bus, ResyncListener, Unsubscribe } from '../../ports/index.js'
import { type SeriesKey, seriesKey } from '../../timeseries/index.js'
import { RedisKeys } from './keys.js'
import { closeConnection, execPipeline } from './connection.js'

export interface RedisBusOptions {
  url: string
  /** `PULSE_ENV`: channels are `pulse:<env>:ch:TICKER#res`. */
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
 * Pub/sub over Redis: one connection publishes, a dedicated one subscribes. Channels are
 * reference-counted per series; ioredis re-subscribes every channel after a reconnect, and
 * resync listeners hear of it once those subscriptions are active again.
 */
export class RedisBus implements Bus {
  readonly #pub: Redis
  readonly #sub: Redis
  readonly #keys: RedisKeys
  readonly #channels = new Map<string, Channel>()
  readonly #onError: (error: unknown) => void
  readonly #resyncListeners = new Set<ResyncListener>()
  /** Set when the subscribing connection closes: messages may be lost until it is back. */
  #dropped = false

  constructor (options: RedisBusOptions) {
    this.#keys = new RedisKeys(options.env)
    this.#onError = options.onError ?? (() => {})
    this.#pub = new Redis(options.url)
    this.#sub = new Redis(options.url, { autoResubscribe: true })
    this.#pub.on('error', this.#onError)
    this.#sub.on('error', this.#onError)
    this.#sub.on('message', (channel: string, message: string) => this.#deliver(channel, message))
    this.#sub.on('close', () => { this.#dropped = true })
    this.#sub.on('ready', () => { if (this.#dropped) this.#resubscribed() })
  }

  onResync (listener: ResyncListener): () => void {
    this.#resyncListeners.add(listener)
    return () => { this.#resyncListeners.delete(listener) }
  }

  /** Calls `listener` on each reconnection attempt of the publishing or the subscribing connection (metrics). */
  onReconnecting (listener: (connection: 'pub' | 'sub') => void): void {
    this.#pub.on('reconnecting', () => listener('pub'))
    this.#sub.on('reconnecting', () => listener('sub'))
  }

  async publish (events: BucketEvent[]): Promise<void> {
    if (events.length === 0) return
    const pipeline = this.#pub.pipeline()
    for (const event of events) {
      pipeline.publish(this.#keys.channel(seriesKey(event.bucket.ticker, event.bucket.resolution)), JSON.stringify(event))
    }
    await execPipeline(pipeline)
  }

  async subscribe (series: SeriesKey, listener: BucketListener): Promise<Unsubscribe> {
    const name = this.#keys.channel(series)
    let channel = this.#channels.get(name)
    if (channel === undefined) {
      channel = { listeners: new Set(), ready: this.#sub.subscribe(name) }
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
    await this.#pub.ping()
    if (this.#sub.status !== 'ready') throw new Error(`subscriber connection is ${this.#sub.status}`)
  }

  async close (): Promise<void> {
    this.#channels.clear()
    this.#resyncListeners.clear()
    await Promise.all([closeConnection(this.#pub), closeConnection(this.#sub)])
  }

  async #leave (name: string, channel: Channel, listener: BucketListener): Promise<void> {
    channel.listeners.delete(listener)
    if (channel.listeners.size > 0 || this.#channels.get(name) !== channel) return
    this.#channels.delete(name)
    // A later subscribe of the same series queues its SUBSCRIBE behind this on one connection.
    if (this.#sub.status === 'ready') await this.#sub.unsubscribe(name)
    else this.#sub.unsubscribe(name).catch(this.#onError)
  }

  /**
   * ioredis emits `ready` before it re-sends the SUBSCRIBEs, on the same connection; a PING
   * sent after them answers once Redis has applied them, so listeners that read the hot
   * state on resync cannot fall between the read and the restored subscription.
   */
  #resubscribed (): void {
    this.#dropped = false
    setImmediate(() => {
      this.#sub.ping().then(() => {
        for (const listener of this.#resyncListeners) {
          try {
            listener()
          } catch (error) {
            this.#onError(error)
          }
        }
      }, (error: unknown) => {
        // Dropped again before the PING answered: the next `ready` resyncs.
        this.#dropped = true
        this.#onError(error)
      })
    })
  }

  #deliver (name: string, message: string): void {
    const channel = this.#channels.get(name)
    if (channel === undefined) return
    // Not checked here: listeners validate what they receive (see BucketListener), and a
    // message that is not JSON reaches them as its text so that they count it too.
    let event: BucketEvent
    try {
      event = JSON.parse(message) as BucketEvent
    } catch {
      event = message as unknown as BucketEvent
    }
    for (const listener of channel.listeners) {
      try {
        listener(event)
      } catch (error) {
        this.#onError(error)
      }
    }
  }
}

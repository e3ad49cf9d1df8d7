import { Cluster, type Redis } from 'ioredis'
import type { SeriesKey } from '../../timeseries/keys.js'
import { closeConnection, execPipeline, openRedis, type RedisClient, type RedisTarget } from './connection.js'
import { RedisKeys } from './keys.js'

/**
 * How series messages travel through Redis, on one publishing and one subscribing
 * connection. Two kinds, picked by {@link openPubSub}:
 *
 * - single node: classic PUBLISH/SUBSCRIBE on `pulse:<env>:ch:TICKER#res`, which works on
 *   every Redis version.
 * - cluster: sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis ≥ 7) on
 *   `pulse:<env>:{TICKER}:ch:TICKER#res`. Classic pub/sub on a cluster broadcasts every
 *   message to every node over the cluster bus, so its cost grows with the cluster; a
 *   sharded channel lives on the shard that owns its slot, which the hash tag makes the
 *   shard of the series' own keys. ioredis keeps one subscriber connection per master
 *   (`shardedSubscribers`) and subscribes again after a node comes back or slots move.
 */
export interface PubSubTransport {
  /** The channel of a series on this transport. */
  channel (series: SeriesKey): string
  /** Publishes each message on its channel (one round of writes, not a transaction). */
  publish (messages: ReadonlyArray<readonly [channel: string, message: string]>): Promise<void>
  /** Resolves once Redis confirmed the subscription. */
  subscribe (channel: string): Promise<void>
  unsubscribe (channel: string): Promise<void>
  /** Every message received on a subscribed channel. */
  onMessage (listener: (channel: string, message: string) => void): void
  /**
   * Called when the subscribing side is subscribed again after it lost a connection:
   * messages published in between were missed.
   */
  onResubscribed (listener: () => void): void
  /** Called as soon as the subscribing side lost a connection: messages may be missed until it is resubscribed. */
  onLost (listener: () => void): void
  /** Called on each reconnection attempt of the publishing or the subscribing connection (metrics). */
  onReconnecting (listener: (connection: 'pub' | 'sub') => void): void
  /** True when the subscribing connection can receive. */
  readonly subscriberReady: boolean
  /**
   * Resolves when Redis answers on the publishing connection (on a cluster, any node: one
   * master down silences only its channels, which is no reason to fail readiness).
   */
  ping (): Promise<void>
  close (): Promise<void>
}

abstract class TwoConnections<Sub extends RedisClient> {
  protected readonly pub: RedisClient
  protected readonly sub: Sub

  constructor (pub: RedisClient, sub: Sub, onError: (error: unknown) => void) {
    this.pub = pub
    this.sub = sub
    pub.on('error', onError)
    sub.on('error', onError)
  }

  onReconnecting (listener: (connection: 'pub' | 'sub') => void): void {
    this.pub.on('reconnecting', () => listener('pub'))
    this.sub.on('reconnecting', () => listener('sub'))
  }

  get subscriberReady (): boolean {
    return this.sub.status === 'ready'
  }

  async ping (): Promise<void> {
    await this.pub.ping()
  }

  async close (): Promise<void> {
    await Promise.all([closeConnection(this.pub), closeConnection(this.sub)])
  }
}

/** PUBLISH/SUBSCRIBE on a single node; ioredis subscribes again after a reconnect. */
class NodePubSub extends TwoConnections<Redis> implements PubSubTransport {
  readonly #keys: RedisKeys

  constructor (target: RedisTarget, env: string, onError: (error: unknown) => void) {
    super(openRedis(target), openRedis(target) as Redis, onError)
    this.#keys = new RedisKeys(env)
  }

  channel (series: SeriesKey): string {
    return this.#keys.channel(series)
  }

  async publish (messages: ReadonlyArray<readonly [string, string]>): Promise<void> {
    const pipeline = this.pub.pipeline()
    for (const [channel, message] of messages) pipeline.publish(channel, message)
    await execPipeline(pipeline)
  }

  async subscribe (channel: string): Promise<void> {
    await this.sub.subscribe(channel)
  }

  async unsubscribe (channel: string): Promise<void> {
    await this.sub.unsubscribe(channel)
  }

  onMessage (listener: (channel: string, message: string) => void): void {
    this.sub.on('message', listener)
  }

  onLost (listener: () => void): void {
    this.sub.on('close', listener)
  }

  onResubscribed (listener: () => void): void {
    // ioredis emits `ready` before it re-sends the SUBSCRIBEs, on the same connection; a
    // PING sent after them answers once Redis has applied them, so a listener that reads
    // the hot state cannot fall between its read and the restored subscriptions.
    let dropped = false
    this.sub.on('close', () => { dropped = true })
    this.sub.on('ready', () => {
      if (!dropped) return
      dropped = false
      setImmediate(() => {
        this.sub.ping().then(listener, () => {
          // Dropped again before the PING answered: the next `ready` signals.
          dropped = true
        })
      })
    })
  }
}

/** SPUBLISH/SSUBSCRIBE on a Redis Cluster, each channel on the shard of its hash tag. */
class ShardedPubSub extends TwoConnections<Cluster> implements PubSubTransport {
  readonly #keys: RedisKeys
  /** Channels this transport was asked to hold, to confirm them again after a shard dropped. */
  readonly #subscribed = new Set<string>()

  constructor (target: RedisTarget, env: string, onError: (error: unknown) => void) {
    super(openRedis(target), openRedis(target, { shardedSubscribers: true }) as Cluster, onError)
    this.#keys = new RedisKeys(env)
  }

  channel (series: SeriesKey): string {
    return this.#keys.shardChannel(series)
  }

  async publish (messages: ReadonlyArray<readonly [string, string]>): Promise<void> {
    const pipeline = this.pub.pipeline()
    for (const [channel, message] of messages) pipeline.spublish(channel, message)
    await execPipeline(pipeline)
  }

  async subscribe (channel: string): Promise<void> {
    this.#subscribed.add(channel)
    await this.sub.ssubscribe(channel)
  }

  async unsubscribe (channel: string): Promise<void> {
    this.#subscribed.delete(channel)
    await this.sub.sunsubscribe(channel)
  }

  onMessage (listener: (channel: string, message: string) => void): void {
    this.sub.on('smessage', listener)
  }

  onLost (listener: () => void): void {
    this.sub.on('-subscriber', listener)
  }

  onResubscribed (listener: () => void): void {
    // ioredis drops a shard subscriber whose connection ended (`-subscriber`), opens a new
    // one and emits `subscribersReady` once it has *sent* SSUBSCRIBE again (also at start
    // and when slots move, which lose nothing) — before Redis applied it. A listener that
    // read the hot state then could miss a message published in between, so the channels
    // are subscribed once more here and the listener runs when every reply is in. A shard
    // that does not answer is tried again until it does (or drops again, which signals anew).
    let lost = false
    let round = 0
    this.sub.on('-subscriber', () => { lost = true })
    this.sub.on('subscribersReady', () => {
      if (!lost) return
      lost = false
      const mine = ++round
      const confirm = async (attempt: number): Promise<void> => {
        try {
          await Promise.all([...this.#subscribed].map(async (channel) => await this.sub.ssubscribe(channel)))
        } catch {
          if (mine !== round || lost) return
          await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 5000)).unref())
          if (mine === round && !lost) await confirm(attempt + 1)
          return
        }
        if (mine === round && !lost) listener()
      }
      confirm(0).catch(() => {})
    })
  }
}

/** Sharded pub/sub on a cluster, classic pub/sub on a single node (see {@link PubSubTransport}). */
export function openPubSub (target: RedisTarget, env: string, onError: (error: unknown) => void): PubSubTransport {
  return target.cluster === undefined ? new NodePubSub(target, env, onError) : new ShardedPubSub(target, env, onError)
}

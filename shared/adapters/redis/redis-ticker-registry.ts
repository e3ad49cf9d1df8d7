import type { TickerCatalogueListener, TickerRegistry } from '../../ports/ticker-registry.js'
import { isTickerSymbol, TickerCatalogue, type TickerChange, type TickerEntry } from '../../timeseries/ticker-catalogue.js'
import { closeConnection, execPipeline, openRedis, type RedisClient, type RedisClusterOptions } from './connection.js'
import { RedisKeys } from './keys.js'
import { defineTickerRegistryScript } from './lua-scripts.js'

/** How often a process reads the whole registry even when the change counter did not move. */
export const TICKER_RECONCILE_MS = 30_000

export interface RedisTickerRegistryOptions {
  url: string
  cluster?: RedisClusterOptions | undefined
  /** `PULSE_ENV`: the registry's keys carry it. */
  env: string
  /** Written when the registry does not exist yet (`TICKERS`). */
  seed: readonly string[]
  now: number
  /** How often the change counter is read (`TICKER_REGISTRY_POLL_MS`, default 1 s). */
  pollMs?: number
  /** A poll that failed (the next one tries again). */
  onError?: (error: unknown) => void
}

/** `active:3:1712345678901` → the entry of `ticker`, or undefined when malformed. */
function decode (ticker: string, value: string): TickerEntry | undefined {
  const match = /^(active|retired):(\d+):(\d+)$/.exec(value)
  if (match === null || !isTickerSymbol(ticker)) return undefined
  return { ticker, state: match[1] as TickerEntry['state'], seq: Number(match[2]), changedAt: Number(match[3]) }
}

function encode (entry: TickerEntry): string {
  return `${entry.state}:${entry.seq}:${entry.changedAt}`
}

/**
 * Cluster mode's ticker registry: a hash in Redis and a counter of its changes, both
 * changed by one script (lua/ticker-registry.lua). Each process reads the counter every
 * `pollMs` and the whole hash when the counter moved, and every {@link TICKER_RECONCILE_MS}
 * in any case, so a change made on any process is known everywhere within about
 * `pollMs`, and nothing (a Redis restart, a failover) can leave a process behind for
 * longer than the reconcile period. A registry that vanished from Redis (a restart
 * without persistence) is written back from what this process knew, not from `TICKERS`.
 */
export class RedisTickerRegistry implements TickerRegistry {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys
  readonly #listeners = new Set<TickerCatalogueListener>()
  readonly #onError: (error: unknown) => void
  #catalogue: TickerCatalogue
  #seenChanges: string | null = null
  #lastFullRead = 0
  #timer: NodeJS.Timeout | undefined
  #polling: Promise<void> | undefined
  #closed = false

  private constructor (redis: RedisClient, keys: RedisKeys, seed: TickerCatalogue, onError: (error: unknown) => void) {
    this.#redis = redis
    this.#keys = keys
    this.#catalogue = seed
    this.#onError = onError
  }

  /** Connects, seeds the registry when Redis has none, reads it, and starts polling. */
  static async open (options: RedisTickerRegistryOptions): Promise<RedisTickerRegistry> {
    const redis = openRedis({ url: options.url, cluster: options.cluster })
    const onError = options.onError ?? (() => {})
    redis.on('error', onError)
    defineTickerRegistryScript(redis)
    const registry = new RedisTickerRegistry(redis, new RedisKeys(options.env), TickerCatalogue.seeded(options.seed, options.now), onError)
    try {
      await registry.#seedWith(registry.#catalogue)
      await registry.refresh()
    } catch (err) {
      await closeConnection(redis)
      throw err
    }
    registry.#schedule(options.pollMs ?? 1000)
    return registry
  }

  current (): TickerCatalogue {
    return this.#catalogue
  }

  async add (ticker: string, now: number): Promise<TickerChange> {
    const reply = await this.#redis.pulseTickerRegistry(2, this.#keys.tickerRegistry(), this.#keys.tickerRegistryChanges(), 'add', ticker, now) as [number, string]
    return await this.#changed(ticker, reply) as TickerChange
  }

  async retire (ticker: string, now: number): Promise<TickerChange | undefined> {
    const reply = await this.#redis.pulseTickerRegistry(2, this.#keys.tickerRegistry(), this.#keys.tickerRegistryChanges(), 'retire', ticker, now) as [number, string?]
    if (reply[0] === -1) return undefined
    return await this.#changed(ticker, reply as [number, string])
  }

  async refresh (): Promise<TickerCatalogue> {
    const [changes, fields] = await execPipeline(this.#redis.pipeline()
      .get(this.#keys.tickerRegistryChanges())
      .hgetall(this.#keys.tickerRegistry())) as [string | null, Record<string, string>]
    this.#lastFullRead = Date.now()
    this.#seenChanges = changes
    const entries = Object.entries(fields).flatMap(([ticker, value]) => decode(ticker, value) ?? [])
    if (entries.length === 0) {
      // Redis lost the registry (restarted empty): put back what this process knew.
      await this.#seedWith(this.#catalogue)
      return this.#catalogue
    }
    this.#adopt(new TickerCatalogue(entries))
    return this.#catalogue
  }

  onChange (listener: TickerCatalogueListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    await this.#polling
    this.#listeners.clear()
    await closeConnection(this.#redis)
  }

  async #seedWith (catalogue: TickerCatalogue): Promise<void> {
    const pairs = catalogue.entries.flatMap((entry) => [entry.ticker, encode(entry)])
    if (pairs.length === 0) return
    await this.#redis.pulseTickerRegistry(2, this.#keys.tickerRegistry(), this.#keys.tickerRegistryChanges(), 'seed', ...pairs)
  }

  /** After this process's own change: read the registry back, so the change is known here at once. */
  async #changed (ticker: string, reply: [number, string]): Promise<TickerChange> {
    const entry = decode(ticker, reply[1])
    if (entry === undefined) throw new Error(`ticker registry: malformed entry ${JSON.stringify(reply[1])} for ${ticker}`)
    if (reply[0] === 1) await this.refresh()
    return { entry, changed: reply[0] === 1 }
  }

  #adopt (catalogue: TickerCatalogue): void {
    if (catalogue.equals(this.#catalogue)) return
    this.#catalogue = catalogue
    for (const listener of this.#listeners) {
      try {
        listener(catalogue)
      } catch (error) {
        this.#onError(error)
      }
    }
  }

  #schedule (pollMs: number): void {
    if (this.#closed) return
    this.#timer = setTimeout(() => {
      this.#polling = this.#poll().catch(this.#onError).finally(() => {
        this.#polling = undefined
        this.#schedule(pollMs)
      })
    }, pollMs)
    this.#timer.unref()
  }

  async #poll (): Promise<void> {
    const changes = await this.#redis.get(this.#keys.tickerRegistryChanges())
    if (changes !== this.#seenChanges || changes === null || Date.now() - this.#lastFullRead >= TICKER_RECONCILE_MS) await this.refresh()
  }
}

import type { BucketRef, Resolution, SeriesKey } from '../../timeseries/index.js'

/**
 * Redis key layout of one environment. Every key of a ticker carries the hash tag
 * `{TICKER}`, so a script that touches one ticker's keys stays on one Redis Cluster slot:
 *
 * - `pulse:<env>:{AAPL}:b:5m:<start>` bucket hash (a hash with only `rev` = 0 marks a bucket
 *   known to be empty in the archive)
 * - `pulse:<env>:{AAPL}:i:5m` sorted set of loaded bucket starts of a series
 * - `pulse:<env>:{AAPL}:seen:<slice>` set of 8-byte fingerprints of the items folded during one
 *   dedupe slice, expiring whole (see shared/timeseries/dedupe.ts)
 * - `pulse:<env>:{AAPL}:dirty` sorted set of dirty bucket members (`5m:<start>`), scored by
 *   when they became dirty
 * - `pulse:<env>:{AAPL}:written` sorted set of recently written bucket members, scored by
 *   when they were written (the flush cadence)
 * - `pulse:<env>:tickers` set of tickers that may have dirty buckets (read outside scripts,
 *   so it needs no hash tag)
 * - `pulse:<env>:finalized-to` end of the last window the finalizer covered (epoch ms)
 * - `pulse:<env>:ch:AAPL#5m` pub/sub channel of a series on a single node (PUBLISH/SUBSCRIBE)
 * - `pulse:<env>:{AAPL}:ch:AAPL#5m` sharded pub/sub channel of a series on a cluster
 *   (SPUBLISH/SSUBSCRIBE): the hash tag keeps its messages on the shard that owns the series
 */
export class RedisKeys {
  readonly #prefix: string

  constructor (env: string) {
    if (/[{}]/.test(env)) throw new Error(`env ${JSON.stringify(env)} must not contain braces`)
    this.#prefix = `pulse:${env}`
  }

  bucket (ref: BucketRef): string {
    return `${this.#tag(ref.ticker)}:b:${ref.resolution}:${ref.start}`
  }

  index (ticker: string, resolution: Resolution): string {
    return `${this.#tag(ticker)}:i:${resolution}`
  }

  seenSlice (ticker: string, slice: number): string {
    return `${this.#tag(ticker)}:seen:${slice}`
  }

  dirty (ticker: string): string {
    return `${this.#tag(ticker)}:dirty`
  }

  written (ticker: string): string {
    return `${this.#tag(ticker)}:written`
  }

  tickers (): string {
    return `${this.#prefix}:tickers`
  }

  finalizedTo (): string {
    return `${this.#prefix}:finalized-to`
  }

  channel (series: SeriesKey): string {
    return `${this.#prefix}:ch:${series}`
  }

  shardChannel (series: SeriesKey): string {
    return `${this.#tag(series.slice(0, series.indexOf('#')))}:ch:${series}`
  }

  /** The series a channel name (either kind) belongs to, or `undefined` for another prefix. */
  seriesOfChannel (channel: string): string | undefined {
    const head = `${this.#prefix}:ch:`
    if (channel.startsWith(head)) return channel.slice(head.length)
    const sharded = /^\{[^{}]*\}:ch:/.exec(channel.startsWith(`${this.#prefix}:`) ? channel.slice(this.#prefix.length + 1) : '')
    return sharded === null ? undefined : channel.slice(this.#prefix.length + 1 + sharded[0].length)
  }

  #tag (ticker: string): string {
    return `${this.#prefix}:{${ticker}}`
  }
}

/** Member of a ticker's dirty set: `5m:<start>`. */
export function dirtyMember (ref: Pick<BucketRef, 'resolution' | 'start'>): string {
  return `${ref.resolution}:${ref.start}`
}

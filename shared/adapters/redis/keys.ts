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
 * - `pulse:<env>:tickers` set of tickers that may have dirty buckets (read outside scripts)
 * - `pulse:<env>:ch:AAPL#5m` pub/sub channel of a series
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

  tickers (): string {
    return `${this.#prefix}:tickers`
  }

  channel (series: SeriesKey): string {
    return `${this.#prefix}:ch:${series}`
  }

  /** The series a channel name belongs to, or `undefined` for another prefix. */
  seriesOfChannel (channel: string): string | undefined {
    const head = `${this.#prefix}:ch:`
    return channel.startsWith(head) ? channel.slice(head.length) : undefined
  }

  #tag (ticker: string): string {
    return `${this.#prefix}:{${ticker}}`
  }
}

/** Member of a ticker's dirty set: `5m:<start>`. */
export function dirtyMember (ref: Pick<BucketRef, 'resolution' | 'start'>): string {
  return `${ref.resolution}:${ref.start}`
}

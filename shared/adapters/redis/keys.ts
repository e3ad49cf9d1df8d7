import { type BucketRef, type SeriesKey } from '../../timeseries/keys.js'
import { type Resolution, isResolution } from '../../timeseries/resolutions.js'

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
 * - `pulse:<env>:{AAPL}:dirty-gen` how many times the ticker's dirty set went from empty
 *   to non-empty: the token that keeps the dirty-tickers index right without a
 *   cross-slot script
 * - `pulse:<env>:{AAPL}:position` hash of the ticker's position: the Redis `run` it belongs to,
 *   its `term` and its `count` (see shared/timeseries/revision.ts); each fold pushes its expiry
 *   out to the latest of the buckets it writes, so it lives as long as the ticker's buckets and
 *   goes with the last of them (a lost one would only cost a new term)
 * - `pulse:<env>:dirty-tickers` sorted set of the tickers with dirty buckets, scored by their
 *   dirty-gen: a flush reads it instead of asking every ticker. Written only when a
 *   ticker's dirty set becomes non-empty (not on every fold), so it is no hot key; a flush
 *   removes a ticker it found clean only while its score still is the gen it found clean at
 * - `pulse:<env>:indexed-tickers` sorted set of the tickers that had dirty buckets, scored by
 *   when they were last indexed (written with the index), read once per process to repair
 *   the index after a crash between a fold and its index write; a ticker leaves it once
 *   every key it could have had has expired ({@link longestKeyLifeMs} in fold-plan.ts)
 * - `pulse:<env>:open-buckets` sorted set of `TICKER:5m:<start>` of buckets that folds
 *   touched, scored by their end: the finalizer reads the ended window from it instead of
 *   asking every ticker, and trims what it finalized
 * - `pulse:<env>:finalized-to` end of the last window the finalizer covered (epoch ms)
 * - `pulse:<env>:{ticker-registry}:tickers` hash of the ticker registry: ticker →
 *   `state:seq:changedAt` (see lua/ticker-registry.lua)
 * - `pulse:<env>:{ticker-registry}:changes` counter of the registry's changes, polled by
 *   every process (same hash tag as the hash, so one script updates both)
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
    return `${this.bucketPrefix(ref.ticker, ref.resolution)}${ref.start}`
  }

  /** The keys of a series' buckets are this followed by their start. */
  bucketPrefix (ticker: string, resolution: Resolution): string {
    return `${this.#tag(ticker)}:b:${resolution}:`
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

  dirtyGen (ticker: string): string {
    return `${this.#tag(ticker)}:dirty-gen`
  }

  position (ticker: string): string {
    return `${this.#tag(ticker)}:position`
  }

  indexedTickers (): string {
    return `${this.#prefix}:indexed-tickers`
  }

  tickerRegistry (): string {
    return `${this.#prefix}:{ticker-registry}:tickers`
  }

  tickerRegistryChanges (): string {
    return `${this.#prefix}:{ticker-registry}:changes`
  }

  dirtyTickers (): string {
    return `${this.#prefix}:dirty-tickers`
  }

  openBuckets (): string {
    return `${this.#prefix}:open-buckets`
  }

  finalizedTo (): string {
    return `${this.#prefix}:finalized-to`
  }

  channel (series: SeriesKey): string {
    return `${this.channelPrefix(series.slice(0, series.indexOf('#')), false)}${series.slice(series.indexOf('#') + 1)}`
  }

  shardChannel (series: SeriesKey): string {
    return `${this.channelPrefix(series.slice(0, series.indexOf('#')), true)}${series.slice(series.indexOf('#') + 1)}`
  }

  /**
   * What a ticker's series channels start with, up to the resolution: `pulse:<env>:ch:AAPL#`,
   * or sharded `pulse:<env>:{AAPL}:ch:AAPL#` (the fold script appends the resolution).
   */
  channelPrefix (ticker: string, sharded: boolean): string {
    return `${sharded ? this.#tag(ticker) : this.#prefix}:ch:${ticker}#`
  }

  #tag (ticker: string): string {
    return `${this.#prefix}:{${ticker}}`
  }
}

/** Member of the open-buckets index: `AAPL:5m:<start>`. */
export function openMember (ref: BucketRef): string {
  return `${ref.ticker}:${ref.resolution}:${ref.start}`
}

/** The bucket an open-buckets member names, or undefined when it is malformed. */
export function parseOpenMember (member: string): BucketRef | undefined {
  const [ticker, resolution, start] = member.split(':')
  if (ticker === undefined || resolution === undefined || start === undefined || !isResolution(resolution)) return undefined
  return { ticker, resolution, start: Number(start) }
}

/** Member of a ticker's dirty set: `5m:<start>`. */
export function dirtyMember (ref: Pick<BucketRef, 'resolution' | 'start'>): string {
  return `${ref.resolution}:${ref.start}`
}

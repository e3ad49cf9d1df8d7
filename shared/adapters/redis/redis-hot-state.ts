import { Redis } from 'ioredis'
import type { FoldOptions, FoldOutcome, HotState } from '../../ports/index.js'
import { type Bucket, type BucketRef, dedupeSlices, groupByTicker, isResolution, type Resolution, type ScoredItem } from '../../timeseries/index.js'
import { BUCKET_FIELDS, decodeBucket } from './bucket-codec.js'
import { closeConnection, execPipeline } from './connection.js'
import { parseFoldReply, planFold, planSeed } from './fold-plan.js'
import { RedisKeys, dirtyMember } from './keys.js'
import { defineScripts } from './lua-scripts.js'

export interface RedisHotStateOptions {
  /** A URL (the adapter opens and closes its own connection) or a connection it borrows. */
  connection: string | Redis
  /** `PULSE_ENV`: every key starts with `pulse:<env>:`. */
  env: string
  dedupeWindowMs: number
  /** Connection errors of an owned connection (ioredis reconnects by itself). */
  onError?: (error: unknown) => void
  /**
   * How long a flush holds the buckets it took (see lua/take-dirty.lua). Default 60 s:
   * longer than an archive write with all its retries, short enough that a crashed
   * flusher's buckets are soon written by another.
   */
  flushLeaseMs?: number
}

/** First copy of each id, as the idempotency rule wants. */
function firstCopies (items: readonly ScoredItem[]): ScoredItem[] {
  const ids = new Set<string>()
  return items.filter((item) => {
    if (ids.has(item.id)) return false
    ids.add(item.id)
    return true
  })
}

/**
 * Hot state in Redis for cluster mode. A fold is one Lua script per ticker (lua/fold.lua),
 * so any number of workers may fold at once; keys are laid out by {@link RedisKeys}.
 * Bucket refs, retention and pre-aggregation come from the domain, in TypeScript; the
 * script dedupes per item and merges by the same law, byte for byte.
 */
export class RedisHotState implements HotState {
  readonly #redis: Redis
  readonly #owned: boolean
  readonly #keys: RedisKeys
  readonly #dedupeWindowMs: number

  readonly #flushLeaseMs: number

  constructor (options: RedisHotStateOptions) {
    this.#owned = typeof options.connection === 'string'
    this.#redis = typeof options.connection === 'string' ? new Redis(options.connection) : options.connection
    this.#keys = new RedisKeys(options.env)
    this.#dedupeWindowMs = options.dedupeWindowMs
    this.#flushLeaseMs = options.flushLeaseMs ?? 60_000
    if (this.#owned) this.#redis.on('error', options.onError ?? (() => {}))
    defineScripts(this.#redis)
  }

  /** Calls `listener` on each reconnection attempt of the connection (metrics). */
  onReconnecting (listener: () => void): void {
    this.#redis.on('reconnecting', listener)
  }

  async fold (ticker: string, items: ScoredItem[], options: FoldOptions): Promise<FoldOutcome> {
    let fresh = firstCopies(items)
    // Each round either applies, asks for a load, or drops at least one seen id.
    while (fresh.length > 0) {
      const call = planFold(this.#keys, ticker, fresh, { ...options, dedupeWindowMs: this.#dedupeWindowMs })
      const [, raw] = await execPipeline(this.#redis.pipeline()
        .sadd(this.#keys.tickers(), ticker)
        .pulseFold(call.keys.length, ...call.keys, ...call.args))
      const reply = parseFoldReply(raw, call.refs)
      if (reply.kind === 'load') return { kind: 'needs-load', refs: reply.refs }
      if (reply.kind === 'ok') return { kind: 'applied', changed: reply.changed, duplicates: items.length - fresh.length }
      const seen = new Set(reply.positions)
      fresh = fresh.filter((_item, i) => !seen.has(i + 1))
    }
    return { kind: 'applied', changed: [], duplicates: items.length }
  }

  /** Expiry of seeded keys is counted from the wall clock (the port passes no `now` here). */
  async seed (refs: BucketRef[], found: Bucket[]): Promise<void> {
    if (refs.length === 0) return
    const byKey = new Map(found.map((bucket) => [this.#keys.bucket(bucket), bucket]))
    const pipeline = this.#redis.pipeline()
    for (const group of groupByTicker(refs).values()) {
      const call = planSeed(this.#keys, group, byKey, Date.now())
      pipeline.pulseSeed(call.keys.length, ...call.keys, ...call.args)
    }
    await execPipeline(pipeline)
  }

  async range (ticker: string, resolution: Resolution, from: number, to: number): Promise<Bucket[]> {
    const starts = await this.#redis.zrangebyscore(this.#keys.index(ticker, resolution), from, `(${to}`)
    return this.get(starts.map((start) => ({ ticker, resolution, start: Number(start) })))
  }

  async get (refs: BucketRef[]): Promise<Bucket[]> {
    if (refs.length === 0) return []
    const pipeline = this.#redis.pipeline()
    for (const ref of refs) pipeline.hmget(this.#keys.bucket(ref), ...BUCKET_FIELDS)
    const results = await execPipeline(pipeline)
    const buckets: Bucket[] = []
    refs.forEach((ref, i) => {
      const bucket = decodeBucket(ref, results[i] as Array<string | null>)
      if (bucket !== undefined) buckets.push(bucket)
    })
    return buckets
  }

  /** Oldest dirty buckets first, across every ticker that has any. */
  async takeDirty (limit: number): Promise<Bucket[]> {
    if (limit <= 0) return []
    const tickers = await this.#redis.smembers(this.#keys.tickers())
    if (tickers.length === 0) return []
    const pipeline = this.#redis.pipeline()
    for (const ticker of tickers) pipeline.pulseTakeDirty(1, this.#keys.dirty(ticker), limit, this.#flushLeaseMs)
    const lists = await execPipeline(pipeline)
    const candidates: Array<{ ref: BucketRef, member: string, score: number }> = []
    tickers.forEach((ticker, i) => {
      const flat = lists[i] as string[]
      for (let j = 0; j + 1 < flat.length; j += 2) {
        const member = flat[j] as string
        const at = member.indexOf(':')
        const resolution = member.slice(0, at)
        if (!isResolution(resolution)) continue
        candidates.push({ ref: { ticker, resolution, start: Number(member.slice(at + 1)) }, member, score: Number(flat[j + 1]) })
      }
    })
    candidates.sort((a, b) => a.score - b.score)
    const taken = candidates.slice(0, limit)
    // Leased beyond the limit: hand them back at once rather than after the lease.
    await this.#release(candidates.slice(limit))
    const buckets = await this.get(taken.map((c) => c.ref))
    if (buckets.length < taken.length) await this.#dropExpiredDirty(taken.map((c) => c.ref), buckets)
    return buckets
  }

  /** Ends the lease of taken buckets (never delays one whose lease already ended). */
  async release (taken: BucketRef[]): Promise<void> {
    if (taken.length === 0) return
    const now = Date.now()
    const pipeline = this.#redis.pipeline()
    for (const ref of taken) pipeline.zadd(this.#keys.dirty(ref.ticker), 'XX', 'LT', now, dirtyMember(ref))
    await execPipeline(pipeline)
  }

  async markClean (written: Bucket[]): Promise<void> {
    if (written.length === 0) return
    const pipeline = this.#redis.pipeline()
    for (const [ticker, group] of groupByTicker(written)) {
      const args = group.flatMap((bucket) => [dirtyMember(bucket), String(bucket.rev)])
      pipeline.pulseMarkClean(1 + group.length, this.#keys.dirty(ticker), ...group.map((b) => this.#keys.bucket(b)), ...args)
    }
    await execPipeline(pipeline)
  }

  async markDirty (refs: BucketRef[]): Promise<void> {
    if (refs.length === 0) return
    const pipeline = this.#redis.pipeline()
    for (const [ticker, group] of groupByTicker(refs)) {
      pipeline.sadd(this.#keys.tickers(), ticker)
      pipeline.pulseMarkDirty(1 + group.length, this.#keys.dirty(ticker), ...group.map((r) => this.#keys.bucket(r)), ...group.map(dirtyMember))
    }
    await execPipeline(pipeline)
  }

  async dedupeEntries (tickers: readonly string[], now: number): Promise<number> {
    const { checked } = dedupeSlices(now, this.#dedupeWindowMs)
    if (tickers.length === 0) return 0
    const pipeline = this.#redis.pipeline()
    for (const ticker of tickers) {
      for (const slice of checked) pipeline.scard(this.#keys.seenSlice(ticker, slice))
    }
    const sizes = await execPipeline(pipeline)
    return sizes.reduce<number>((sum, n) => sum + Number(n), 0)
  }

  async dirtyCount (): Promise<number> {
    const tickers = await this.#redis.smembers(this.#keys.tickers())
    if (tickers.length === 0) return 0
    const pipeline = this.#redis.pipeline()
    for (const ticker of tickers) pipeline.zcard(this.#keys.dirty(ticker))
    const counts = await execPipeline(pipeline)
    return counts.reduce<number>((sum, n) => sum + Number(n), 0)
  }

  async ping (): Promise<void> {
    await this.#redis.ping()
  }

  async close (): Promise<void> {
    if (this.#owned) await closeConnection(this.#redis)
  }

  /** Dirty marks of buckets whose keys expired can never be written: forget them. */
  async #release (leased: Array<{ ref: BucketRef, member: string, score: number }>): Promise<void> {
    if (leased.length === 0) return
    const pipeline = this.#redis.pipeline()
    for (const { ref, member, score } of leased) pipeline.zadd(this.#keys.dirty(ref.ticker), 'XX', score, member)
    await execPipeline(pipeline)
  }

  async #dropExpiredDirty (refs: BucketRef[], present: Bucket[]): Promise<void> {
    const alive = new Set(present.map((b) => this.#keys.bucket(b)))
    const pipeline = this.#redis.pipeline()
    for (const ref of refs) {
      if (!alive.has(this.#keys.bucket(ref))) pipeline.zrem(this.#keys.dirty(ref.ticker), dirtyMember(ref))
    }
    await execPipeline(pipeline)
  }
}

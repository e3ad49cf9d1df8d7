import type { FlushCadence, FoldOptions, FoldOutcome, HotState } from '../../ports/index.js'
import {
  type Bucket, type BucketRef, type Resolution, type ScoredItem, DURATION_MS, RESOLUTIONS, dedupeSlices, groupByTicker, isResolution
} from '../../timeseries/index.js'
import { BUCKET_FIELDS, decodeBucket } from './bucket-codec.js'
import { closeConnection, execPipeline, openRedis, type RedisClient, type RedisClusterOptions } from './connection.js'
import { parseFoldReply, planFold, planSeed } from './fold-plan.js'
import { RedisKeys, dirtyMember } from './keys.js'
import { defineScripts } from './lua-scripts.js'

export interface RedisHotStateOptions {
  /** A URL (the adapter opens and closes its own connection) or a connection it borrows. */
  connection: string | RedisClient
  /** With a URL: set when it names a seed node of a Redis Cluster. */
  cluster?: RedisClusterOptions | undefined
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

type Arg = string | number

/** How long a bucket's last write time is kept for the flush cadence: longer than any cadence. */
const WRITTEN_KEEP_MS = 60 * 60_000

/** A bucket this instance leased: its dirty-set member and the lease's end (its token). */
interface Lease {
  ref: BucketRef
  member: string
  leaseEnd: number
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
  readonly #redis: RedisClient
  readonly #owned: boolean
  readonly #keys: RedisKeys
  readonly #dedupeWindowMs: number

  readonly #flushLeaseMs: number
  /**
   * Lease end of each bucket this instance took and has not yet handed back or marked
   * clean, by bucket key: the token that tells its lease from a later one of another
   * flusher.
   */
  readonly #leases = new Map<string, number>()
  /** Where the next {@link RedisHotState.takeDirty} starts in the ticker list. */
  #nextTicker = Math.floor(Math.random() * 1_000_000)

  constructor (options: RedisHotStateOptions) {
    this.#owned = typeof options.connection === 'string'
    this.#redis = typeof options.connection === 'string' ? openRedis({ url: options.connection, cluster: options.cluster }) : options.connection
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

  /**
   * Shares `limit` out evenly among the tickers with dirty buckets, starting at a ticker
   * that moves on with every call (and differs between processes), so neither a busy
   * ticker nor another worker starves the rest. Each pass is one pipelined script call
   * per ticker asked; a ticker that filled its share is asked again for what the others
   * left, so a single busy ticker still fills a round.
   */
  async takeDirty (limit: number, cadenceMs?: FlushCadence): Promise<Bucket[]> {
    if (limit <= 0) return []
    const members = await this.#redis.smembers(this.#keys.tickers())
    if (members.length === 0) return []
    members.sort()
    const first = this.#nextTicker++ % members.length
    let candidates = [...members.slice(first), ...members.slice(0, first)]
    const cadenceArgs: Arg[] = []
    for (const resolution of RESOLUTIONS) {
      const every = cadenceMs?.[resolution]
      if (every !== undefined) cadenceArgs.push(resolution, DURATION_MS[resolution], every)
    }
    const taken: Lease[] = []
    while (taken.length < limit && candidates.length > 0) {
      const want = limit - taken.length
      const asked = candidates.slice(0, Math.min(candidates.length, want))
      const share = (i: number): number => Math.floor(want / asked.length) + (i < want % asked.length ? 1 : 0)
      const pipeline = this.#redis.pipeline()
      asked.forEach((ticker, i) => {
        pipeline.pulseTakeDirty(2, this.#keys.dirty(ticker), this.#keys.written(ticker), share(i), this.#flushLeaseMs, cadenceArgs.length / 3, ...cadenceArgs)
      })
      const lists = await execPipeline(pipeline)
      const full: string[] = []
      asked.forEach((ticker, i) => {
        const [leaseEnd, ...flat] = lists[i] as string[]
        if (flat.length / 2 >= share(i)) full.push(ticker)
        for (let j = 0; j + 1 < flat.length; j += 2) {
          const member = flat[j] as string
          const at = member.indexOf(':')
          const resolution = member.slice(0, at)
          if (!isResolution(resolution)) continue
          taken.push({ ref: { ticker, resolution, start: Number(member.slice(at + 1)) }, member, leaseEnd: Number(leaseEnd) })
        }
      })
      candidates = [...candidates.slice(asked.length), ...full]
    }
    for (const lease of taken) this.#leases.set(this.#keys.bucket(lease.ref), lease.leaseEnd)
    const buckets = await this.get(taken.map((c) => c.ref))
    if (buckets.length < taken.length) await this.#dropExpiredDirty(taken.map((c) => c.ref), buckets)
    return buckets
  }

  /** Ends this instance's lease of taken buckets; never touches another flusher's lease. */
  async release (taken: BucketRef[], retryAfterMs = 0): Promise<void> {
    const leases: Lease[] = []
    for (const ref of taken) {
      const key = this.#keys.bucket(ref)
      const leaseEnd = this.#leases.get(key)
      if (leaseEnd === undefined) continue
      this.#leases.delete(key)
      leases.push({ ref, member: dirtyMember(ref), leaseEnd })
    }
    await this.#handBack(leases, retryAfterMs)
  }

  async markClean (done: Bucket[]): Promise<void> {
    if (done.length === 0) return
    const pipeline = this.#redis.pipeline()
    for (const [ticker, group] of groupByTicker(done)) {
      const args = group.flatMap((bucket) => {
        const key = this.#keys.bucket(bucket)
        const leaseEnd = this.#leases.get(key)
        this.#leases.delete(key)
        return [dirtyMember(bucket), String(bucket.rev), leaseEnd === undefined ? '' : String(leaseEnd)]
      })
      pipeline.pulseMarkClean(2 + group.length, this.#keys.dirty(ticker), this.#keys.written(ticker), ...group.map((b) => this.#keys.bucket(b)), WRITTEN_KEEP_MS, ...args)
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

  async advanceFinalizedMark (to: number): Promise<number | null | undefined> {
    const [moved, previous] = await this.#redis.pulseAdvanceFinalizedMark(1, this.#keys.finalizedTo(), to)
    if (Number(moved) !== 1) return undefined
    return previous === undefined || previous === '' ? null : Number(previous)
  }

  async ping (): Promise<void> {
    await this.#redis.ping()
  }

  async close (): Promise<void> {
    if (this.#owned) await closeConnection(this.#redis)
  }

  /** One script call per ticker: each bucket becomes eligible again `delayMs` from now. */
  async #handBack (leases: Lease[], delayMs: number): Promise<void> {
    if (leases.length === 0) return
    const byTicker = new Map<string, Arg[]>()
    for (const { ref, member, leaseEnd } of leases) {
      let args = byTicker.get(ref.ticker)
      if (args === undefined) byTicker.set(ref.ticker, args = [])
      args.push(member, String(leaseEnd))
    }
    const pipeline = this.#redis.pipeline()
    for (const [ticker, args] of byTicker) pipeline.pulseHandBack(1, this.#keys.dirty(ticker), delayMs, ...args)
    await execPipeline(pipeline)
  }

  /** Dirty marks of buckets whose keys expired can never be written: forget them. */
  async #dropExpiredDirty (refs: BucketRef[], present: Bucket[]): Promise<void> {
    const alive = new Set(present.map((b) => this.#keys.bucket(b)))
    const pipeline = this.#redis.pipeline()
    for (const ref of refs) {
      const key = this.#keys.bucket(ref)
      if (alive.has(key)) continue
      this.#leases.delete(key)
      pipeline.zrem(this.#keys.dirty(ref.ticker), dirtyMember(ref))
    }
    await execPipeline(pipeline)
  }
}

import { LRUCache } from 'lru-cache'
import { faultPoint } from '../../fault-points.js'
import type { FinalizedWindow, FlushCadence, FoldOptions, FoldOutcome, HotState } from '../../ports/hot-state.js'
import { type Bucket, type ScoredItem } from '../../timeseries/bucket.js'
import { dedupeSlices } from '../../timeseries/dedupe.js'
import { type BucketRef, groupByTicker } from '../../timeseries/keys.js'
import { type Resolution, DURATION_MS, RESOLUTIONS, isResolution, bucketEnd } from '../../timeseries/resolutions.js'
import { BUCKET_FIELDS, decodeBucket } from './bucket-codec.js'
import { closeConnection, execPipeline, openRedis, type RedisClient, type RedisClusterOptions } from './connection.js'
import { type FoldPublication, longestKeyLifeMs, parseFoldReply, planFold, planSeed } from './fold-plan.js'
import { RedisKeys, dirtyMember, openMember, parseOpenMember } from './keys.js'
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
  /**
   * How long a command of an owned connection may wait for its reply before it fails
   * (default 10 s): a reply lost with a Redis that died or failed over would otherwise hold
   * its caller (a fold, a flush, a history read) for ever. No command here blocks on purpose.
   */
  commandTimeoutMs?: number
  /**
   * Whether a fold publishes its changes on the series channels (default true): PUBLISH on
   * a single node, SPUBLISH on a Redis Cluster, on the channels a `RedisBus` of the same
   * env subscribes to.
   */
  publish?: boolean
}

type Arg = string | number

const COMMAND_TIMEOUT_MS = 10_000

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
 * so any number of workers may fold at once; keys are laid out by {@link RedisKeys}. The
 * script publishes the buckets it changed, so series channels carry states in position order.
 * Bucket refs, retention and pre-aggregation come from the domain, in TypeScript; the
 * script dedupes per item and merges by the same law, byte for byte.
 */
export class RedisHotState implements HotState {
  readonly #redis: RedisClient
  readonly #owned: boolean
  readonly #keys: RedisKeys
  readonly #dedupeWindowMs: number

  readonly #flushLeaseMs: number
  readonly #publish: boolean
  /**
   * Lease end of each bucket this instance took and has not yet handed back or marked
   * clean, by bucket key: the token that tells its lease from a later one of another
   * flusher.
   */
  readonly #leases = new Map<string, number>()
  /** Where the next {@link RedisHotState.takeDirty} starts in the ticker list. */
  #nextTicker = Math.floor(Math.random() * 1_000_000)
  /** Open-buckets members this instance registered, until their bucket ends. */
  readonly #registered = new LRUCache<string, true>({ max: 100_000 })
  #indexRepaired = false

  constructor (options: RedisHotStateOptions) {
    this.#owned = typeof options.connection === 'string'
    this.#redis = typeof options.connection === 'string'
      ? openRedis({ url: options.connection, cluster: options.cluster }, { commandTimeout: options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS })
      : options.connection
    this.#keys = new RedisKeys(options.env)
    this.#dedupeWindowMs = options.dedupeWindowMs
    this.#flushLeaseMs = options.flushLeaseMs ?? 60_000
    this.#publish = options.publish ?? true
    if (this.#owned) this.#redis.on('error', options.onError ?? (() => {}))
    defineScripts(this.#redis)
  }

  /** Calls `listener` on each reconnection attempt of the connection (metrics). */
  onReconnecting (listener: () => void): void {
    this.#redis.on('reconnecting', listener)
  }

  /**
   * Journal marks are not taken: the journal, the only queue with marks, runs with the
   * memory hot state. The script publishes what it changed (see lua/fold.lua).
   */
  async fold (ticker: string, items: ScoredItem[], options: FoldOptions): Promise<FoldOutcome> {
    let fresh = firstCopies(items)
    let sawDuplicates = false
    const publish = this.#publication(ticker, options.acceptedAt)
    // Each round either applies, asks for a load, or drops at least one seen id.
    while (fresh.length > 0) {
      const call = planFold(this.#keys, ticker, fresh, { now: options.now, dedupeWindowMs: this.#dedupeWindowMs, term: options.term, publish })
      const pipeline = this.#redis.pipeline()
      // Registered before the fold, so no bucket a fold touched escapes the finalizer.
      const unregistered = call.refs.filter((ref) => !this.#registered.has(openMember(ref)))
      if (unregistered.length > 0) {
        pipeline.zadd(this.#keys.openBuckets(), 'NX', ...unregistered.flatMap((ref) => [bucketEnd(ref.start, ref.resolution), openMember(ref)]))
      }
      pipeline.pulseFold(call.keys.length, ...call.keys, ...call.args)
      const results = await execPipeline(pipeline)
      for (const ref of unregistered) this.#registered.set(openMember(ref), true, { ttl: Math.max(1, bucketEnd(ref.start, ref.resolution) - Date.now()) })
      const reply = parseFoldReply(results[results.length - 1], call.refs)
      if (reply.kind === 'load') return { kind: 'needs-load', refs: reply.refs }
      if (reply.kind === 'term') return { kind: 'needs-term', run: reply.run }
      if (reply.kind === 'ok') {
        if (reply.gen > 0) await this.#indexDirty([[ticker, reply.gen]])
        // A fold offered a term follows a restart or failover: the ticker's dirty set may
        // have come back non-empty (a lagging replica's) while the index, on another slot,
        // dropped it once the lost master had it clean — its buckets would never be written.
        else if (sawDuplicates || options.term !== undefined) await this.#repairTickerIndex(ticker)
        return { kind: 'applied', changed: reply.changed, duplicates: items.length - fresh.length }
      }
      sawDuplicates = true
      const seen = new Set(reply.positions)
      fresh = fresh.filter((_item, i) => !seen.has(i + 1))
    }
    if (sawDuplicates) await this.#repairTickerIndex(ticker)
    return { kind: 'applied', changed: [], duplicates: items.length }
  }

  /** How the fold script publishes a ticker's changes; undefined when this state does not publish. */
  #publication (ticker: string, acceptedAt: number | undefined): FoldPublication | undefined {
    if (!this.#publish) return undefined
    const sharded = this.#redis.isCluster
    return { command: sharded ? 'SPUBLISH' : 'PUBLISH', channelPrefix: this.#keys.channelPrefix(ticker, sharded), acceptedAt }
  }

  /**
   * Indexes the ticker as dirty when its dirty set holds buckets. A fold that found items
   * already seen may be the retry of one that applied while its caller never learnt it (a
   * reply lost with a failing Redis, or the index write after it failed): that fold's
   * buckets are dirty, but the index, written only when a dirty set stops being empty, may
   * not name the ticker, and the write-behind reads only the index.
   */
  async #repairTickerIndex (ticker: string): Promise<void> {
    const [, gen] = await this.#redis.pulseMarkDirty(3, this.#keys.dirty(ticker), this.#keys.written(ticker), this.#keys.dirtyGen(ticker)) as [number, number]
    await this.#indexDirty([[ticker, Number(gen)]])
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

  /** One script: the series at one position (see lua/range.lua). */
  async range (ticker: string, resolution: Resolution, from: number, to: number): Promise<Bucket[]> {
    const flat = await this.#redis.pulseRange(1, this.#keys.index(ticker, resolution), from, `(${to}`, this.#keys.bucketPrefix(ticker, resolution), ...BUCKET_FIELDS)
    const buckets: Bucket[] = []
    const width = BUCKET_FIELDS.length + 1
    for (let i = 0; i + width <= flat.length; i += width) {
      const bucket = decodeBucket({ ticker, resolution, start: Number(flat[i]) }, flat.slice(i + 1, i + width))
      if (bucket !== undefined) buckets.push(bucket)
    }
    return buckets
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
    await this.#repairIndexOnce()
    const members = await this.#dirtyTickers()
    if (members.length === 0) return []
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
        pipeline.pulseTakeDirty(3, this.#keys.dirty(ticker), this.#keys.written(ticker), this.#keys.dirtyGen(ticker), share(i), this.#flushLeaseMs, cadenceArgs.length / 3, ...cadenceArgs)
      })
      const lists = await execPipeline(pipeline)
      const full: string[] = []
      const clean: Arg[] = []
      asked.forEach((ticker, i) => {
        const [leaseEnd, cleanGen, ...flat] = lists[i] as string[]
        if (cleanGen !== undefined && cleanGen !== '') clean.push(ticker, cleanGen)
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
      if (clean.length > 0) await this.#redis.pulseDropCleanTickers(1, this.#keys.dirtyTickers(), ...clean)
    }
    for (const lease of taken) this.#leases.set(this.#keys.bucket(lease.ref), lease.leaseEnd)
    const buckets = await this.get(taken.map((c) => c.ref))
    await faultPoint('hot.take-dirty.after-read')
    if (buckets.length < taken.length) await this.#handBackMissing(taken, buckets)
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
    const tickers = [...groupByTicker(refs)].map(([ticker, group]) => {
      pipeline.pulseMarkDirty(
        3 + group.length, this.#keys.dirty(ticker), this.#keys.written(ticker), this.#keys.dirtyGen(ticker), ...group.map((r) => this.#keys.bucket(r)),
        ...group.flatMap((r) => [dirtyMember(r), bucketEnd(r.start, r.resolution)])
      )
      return ticker
    })
    const replies = await execPipeline(pipeline)
    await this.#indexDirty(tickers.map((ticker, i) => [ticker, Number((replies[i] as [number, number])[1])]))
  }

  async endedBuckets (_tickers: readonly string[], from: number, to: number): Promise<BucketRef[]> {
    const members = await this.#redis.zrangebyscore(this.#keys.openBuckets(), `(${from}`, to)
    // Windows before this one are finalized: their entries (and late folds into them) can go.
    await this.#redis.zremrangebyscore(this.#keys.openBuckets(), '-inf', from)
    const refs: BucketRef[] = []
    for (const member of members) {
      const ref = parseOpenMember(member)
      if (ref !== undefined) refs.push(ref)
    }
    return refs
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
    const tickers = await this.#dirtyTickers()
    if (tickers.length === 0) return 0
    const pipeline = this.#redis.pipeline()
    for (const ticker of tickers) pipeline.zcard(this.#keys.dirty(ticker))
    const counts = await execPipeline(pipeline)
    return counts.reduce<number>((sum, n) => sum + Number(n), 0)
  }

  async advanceFinalizedMark (to: number, stepMs: number): Promise<FinalizedWindow | undefined> {
    const [moved, previous, mark] = await this.#redis.pulseAdvanceFinalizedMark(1, this.#keys.finalizedTo(), to, stepMs)
    if (Number(moved) !== 1) return undefined
    return { from: previous === undefined || previous === '' ? null : Number(previous), to: Number(mark) }
  }

  async ping (): Promise<void> {
    await this.#redis.ping()
  }

  async close (): Promise<void> {
    if (this.#owned) await closeConnection(this.#redis)
  }

  /** Tickers the dirty-tickers index names, in a fixed order. */
  async #dirtyTickers (): Promise<string[]> {
    return await this.#redis.zrange(this.#keys.dirtyTickers(), 0, -1)
  }

  /**
   * Indexes tickers as dirty at their dirty-gen (`gen < 0`: clean, nothing to do). `GT`
   * never lowers a score, so a late write cannot undo a newer one.
   */
  async #indexDirty (gens: ReadonlyArray<[string, number]>): Promise<void> {
    const dirty = gens.filter(([, gen]) => gen >= 0)
    if (dirty.length === 0) return
    const now = Date.now()
    await execPipeline(this.#redis.pipeline()
      .zadd(this.#keys.dirtyTickers(), 'GT', ...dirty.flatMap(([ticker, gen]) => [gen, ticker]))
      .zadd(this.#keys.indexedTickers(), ...dirty.flatMap(([ticker]) => [now, ticker]))
      .zremrangebyscore(this.#keys.indexedTickers(), '-inf', now - longestKeyLifeMs()))
  }

  /**
   * Once per instance, before its first flush: indexes every ticker that has dirty buckets
   * but no index entry — a process that died between a fold and its index write, or dirty
   * sets left by a version without the index.
   */
  async #repairIndexOnce (): Promise<void> {
    if (this.#indexRepaired) return
    const tickers = await this.#redis.zrange(this.#keys.indexedTickers(), 0, -1)
    if (tickers.length > 0) {
      const pipeline = this.#redis.pipeline()
      for (const ticker of tickers) pipeline.pulseMarkDirty(3, this.#keys.dirty(ticker), this.#keys.written(ticker), this.#keys.dirtyGen(ticker))
      const replies = await execPipeline(pipeline)
      await this.#indexDirty(tickers.map((ticker, i) => [ticker, Number((replies[i] as [number, number])[1])]))
    }
    this.#indexRepaired = true
  }

  /**
   * One script call per ticker: each bucket becomes eligible again `delayMs` from now, or
   * leaves the dirty set if its hash is gone by then.
   */
  async #handBack (leases: Lease[], delayMs: number): Promise<void> {
    if (leases.length === 0) return
    const byTicker = new Map<string, Lease[]>()
    for (const lease of leases) byTicker.set(lease.ref.ticker, [...(byTicker.get(lease.ref.ticker) ?? []), lease])
    const pipeline = this.#redis.pipeline()
    for (const [ticker, group] of byTicker) {
      pipeline.pulseHandBack(
        1 + group.length, this.#keys.dirty(ticker), ...group.map((lease) => this.#keys.bucket(lease.ref)),
        delayMs, ...group.flatMap((lease) => [lease.member, String(lease.leaseEnd)])
      )
    }
    await execPipeline(pipeline)
  }

  /**
   * Taken buckets the read did not find (expired, or rolled back by a failover) can never
   * be written: their marks go — unless a fold brought a bucket back since, which the hand
   * back checks atomically (then it is due at once).
   */
  async #handBackMissing (taken: readonly Lease[], present: readonly Bucket[]): Promise<void> {
    const alive = new Set(present.map((b) => this.#keys.bucket(b)))
    const missing = taken.filter((lease) => !alive.has(this.#keys.bucket(lease.ref)))
    for (const lease of missing) this.#leases.delete(this.#keys.bucket(lease.ref))
    await this.#handBack(missing, 0)
  }
}

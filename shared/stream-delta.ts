import type { WireBucket } from './timeseries/bucket.js'
import { bucketEnd, isResolution, toIsoSecond } from './timeseries/resolutions.js'

/*
 * The delta encoding of bucket events (`?encoding=delta` on the WebSocket): what a
 * `bucket_delta` message carries, how a client applies it, and the per-connection memory
 * of the state last received of each bucket, which the gateway and the SDK keep alike.
 * Imports only resolutions.ts, so the browser bundle takes it as it is.
 */

/** The values of `?encoding=` on the WebSocket: every bucket state whole, or deltas where the client holds the base. */
export const STREAM_ENCODINGS = ['full', 'delta'] as const

export type StreamEncoding = typeof STREAM_ENCODINGS[number]

/** Whether `value` names a stream encoding. */
export function isStreamEncoding (value: unknown): value is StreamEncoding {
  return typeof value === 'string' && (STREAM_ENCODINGS as readonly string[]).includes(value)
}

/**
 * Buckets a delta connection remembers the last received state of. Both ends keep a
 * {@link DeltaMemory} of this size, touched by the same bucket events in the same order,
 * so they always remember the same buckets.
 */
export const DELTA_MEMORY = 1024

/**
 * A `bucket_delta` message: one bucket's new state as the fields that changed since the
 * state `b` of it, which this connection received last. Short keys, as the point is bytes:
 *
 * `k` `ticker#resolution@start` (start in epoch seconds), `b` the base rev; then only what
 * changed: `o` open, `h` high, `l` low, `c` close, `n` count, `s` sum, `lp` `ln` `lg` the
 * positive, neutral and negative label counts, `src` sources, `st` sources_truncated, `r`
 * rev, `u` last_updated (epoch seconds); `pp` progress_pct, present exactly when the bucket
 * is partial. `avg`, `is_partial` and `next_update_at` follow from the others.
 */
export interface BucketDelta {
  type: 'bucket_delta'
  /** The series position, as on a full event. */
  id: string
  k: string
  b: number
  o?: number
  h?: number
  l?: number
  c?: number
  n?: number
  s?: number
  lp?: number
  ln?: number
  lg?: number
  src?: string[]
  st?: boolean
  r?: number
  u?: number
  pp?: number
}

/** The wire bucket as both ends see it (the fields a delta can set): the SDK names no resolution type of its own. */
export type DeltaBucket = Omit<WireBucket, 'resolution'> & { resolution: string }

/** The bucket key of a delta (`k`): `ticker#resolution@start`, start in epoch seconds. */
export function deltaKey (ticker: string, resolution: string, startMs: number): string {
  return `${ticker}#${resolution}@${Math.floor(startMs / 1000)}`
}

/** The parts of a delta's key; undefined when it is not one. */
export function parseDeltaKey (key: string): { ticker: string, resolution: string, startMs: number } | undefined {
  const match = /^([^#]+)#([^@]+)@(\d+)$/.exec(key)
  if (match === null) return undefined
  return { ticker: match[1] as string, resolution: match[2] as string, startMs: Number(match[3]) * 1000 }
}

/**
 * `held` (the state of the bucket received last, whose rev is `delta.b`) with `delta`
 * applied: equal, field for field, to the full state the gateway rendered. Undefined
 * when `held` is not the delta's base.
 */
export function applyDelta<B extends DeltaBucket> (held: B, delta: BucketDelta): B | undefined {
  if (held.rev !== delta.b) return undefined
  const next: B = { ...held, label_counts: { ...held.label_counts } }
  if (delta.o !== undefined) next.open = delta.o
  if (delta.h !== undefined) next.high = delta.h
  if (delta.l !== undefined) next.low = delta.l
  if (delta.c !== undefined) next.close = delta.c
  if (delta.n !== undefined) next.count = delta.n
  if (delta.s !== undefined) next.sum = delta.s
  if (delta.lp !== undefined) next.label_counts.positive = delta.lp
  if (delta.ln !== undefined) next.label_counts.neutral = delta.ln
  if (delta.lg !== undefined) next.label_counts.negative = delta.lg
  if (delta.src !== undefined) next.sources = delta.src.slice()
  if (delta.st !== undefined) next.sources_truncated = delta.st
  if (delta.r !== undefined) next.rev = delta.r
  if (delta.u !== undefined) next.last_updated = toIsoSecond(delta.u * 1000)
  next.avg = next.sum / next.count
  next.is_partial = delta.pp !== undefined
  delete (next as Partial<DeltaBucket>).progress_pct
  delete (next as Partial<DeltaBucket>).next_update_at
  if (delta.pp !== undefined) {
    const parsed = parseDeltaKey(delta.k)
    next.progress_pct = delta.pp
    if (parsed !== undefined && isResolution(parsed.resolution)) next.next_update_at = toIsoSecond(bucketEnd(parsed.startMs, parsed.resolution))
  }
  return next
}

/**
 * The state last received of each bucket on one delta connection, at most
 * {@link DELTA_MEMORY} buckets, the one first received forgotten first (kept in place when
 * it changes: a touch is one map write, which the gateway makes per delivered update). The gateway
 * touches it with each bucket event it writes, the SDK with each it receives: the same
 * events in the same order, so both remember the same buckets, and the gateway sends a
 * delta only against a state the client holds.
 */
export class DeltaMemory<T> {
  readonly #states = new Map<string, T>()

  constructor (readonly capacity = DELTA_MEMORY) {}

  get size (): number {
    return this.#states.size
  }

  get (key: string): T | undefined {
    return this.#states.get(key)
  }

  /** `state` is now the last received of bucket `key`. */
  touch (key: string, state: T): void {
    const known = this.#states.has(key)
    this.#states.set(key, state)
    if (!known && this.#states.size > this.capacity) this.#states.delete(this.#states.keys().next().value as string)
  }

  clear (): void {
    this.#states.clear()
  }
}

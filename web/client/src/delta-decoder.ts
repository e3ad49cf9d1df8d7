/*
 * The delta encoding as a WebSocket client reads it: the gateway sends a bucket's state in
 * full the first time, then only the fields that changed against the state it sent last
 * (shared/stream-delta.ts). The client remembers the same states, per connection, to
 * rebuild each full state.
 */
import { applyDelta, deltaKey, DeltaMemory, parseDeltaKey } from '../../../shared/stream-delta.js'
import type { Bucket, BucketDelta, BucketEvent } from './types.js'

/** A delta read back: its series (`TICKER#resolution`) and the full state, undefined when the delta is not against the state held. */
export interface DecodedDelta {
  key: string
  bucket: Bucket | undefined
}

/** Rebuilds full bucket states from one WebSocket connection's deltas. */
export class DeltaDecoder {
  /** The state of each bucket received last: the base of the gateway's deltas (it remembers the same). */
  readonly #received = new DeltaMemory<Bucket>()

  /** A new connection: the gateway starts from nothing too. */
  clear (): void {
    this.#received.clear()
  }

  /** A bucket's state arrived in full. */
  full (event: BucketEvent): void {
    this.#received.touch(deltaKey(event.ticker, event.resolution, Date.parse(event.bucket.timestamp)), event.bucket)
  }

  /** The state `delta` describes; undefined when its key names no series. */
  decode (delta: BucketDelta): DecodedDelta | undefined {
    const held = this.#received.get(delta.k)
    const bucket = held === undefined ? undefined : applyDelta(held, delta)
    const parsed = parseDeltaKey(delta.k)
    if (parsed === undefined) return undefined
    if (bucket !== undefined) this.#received.touch(delta.k, bucket)
    return { key: `${parsed.ticker}#${parsed.resolution}`, bucket }
  }
}

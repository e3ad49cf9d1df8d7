import type { Bucket } from '../timeseries/bucket.js'
import type { SeriesKey } from '../timeseries/keys.js'

/**
 * A message on a series channel: `change` after a fold changed the bucket (including late
 * data), `final` when the finalizer saw the bucket complete.
 */
export interface BucketEvent {
  kind: 'change' | 'final'
  bucket: Bucket
  /** When the batch that caused it was accepted, epoch ms (change events). */
  acceptedAt?: number
  /**
   * Set on the last state of its series that the fold which made it publishes: no other
   * state of the series at this rev follows, so a receiver that heard every message of the
   * channel holds every state up to this rev (a batch can change several buckets of one
   * series, all at the same rev). Unset, only the states below this rev are known to be in.
   */
  lastAtRev?: true
}

/**
 * Hears the messages of one series. What arrives was published by another process and is
 * typed as it should be, not as it is: a receiver that serves it to clients validates it
 * first (the gateway's series cache does). A message that is not even JSON arrives as its text.
 */
export type BucketListener = (event: BucketEvent) => void
export type Unsubscribe = () => Promise<void>
/** Hears that messages may have been lost; see {@link Bus.onResync}. */
export type ResyncListener = () => void
/** Hears that messages may be being lost from now on; see {@link Bus.onLoss}. */
export type LossListener = () => void

/**
 * Pub/sub of bucket events on `ticker#resolution` channels.
 *
 * `change` events are published by the hot state's fold itself, atomically with the change
 * (see {@link HotState.fold}), so each channel carries its states in position order;
 * {@link Bus.publish} is for the rest (the finalizer's `final` events).
 *
 * Subscriptions are reference-counted by the adapter: the first listener of a series
 * subscribes the channel, the last one to leave unsubscribes it. A dropped connection is
 * re-established and every subscription restored, but pub/sub does not queue: whatever
 * was published while the connection was down is lost, and {@link Bus.onResync} says so.
 */
export interface Bus {
  publish (events: BucketEvent[]): Promise<void>
  subscribe (series: SeriesKey, listener: BucketListener): Promise<Unsubscribe>
  /**
   * Calls `listener` each time messages of the subscribed series may have been missed:
   * after the subscribing connection dropped and came back, once every subscription is
   * active again (so a resync that reads the hot state then misses nothing). A bus that
   * never drops (in-process) never calls it. Returns a function that stops listening.
   */
  onResync (listener: ResyncListener): () => void
  /**
   * Calls `listener` as soon as the subscribing connection dropped: from then until the
   * next resync, messages of the subscribed series may be lost, so what arrives is not
   * known to follow on from what arrived before. Returns a function that stops listening.
   */
  onLoss (listener: LossListener): () => void
  ping (): Promise<void>
  close (): Promise<void>
}

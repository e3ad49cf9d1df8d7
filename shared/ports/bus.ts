import type { Bucket, SeriesKey } from '../timeseries/index.js'

/**
 * A message on a series channel: `change` after a fold changed the bucket (including late
 * data), `final` when the finalizer saw the bucket complete.
 */
export interface BucketEvent {
  kind: 'change' | 'final'
  bucket: Bucket
  /** When the batch that caused it was accepted, epoch ms (change events). */
  acceptedAt?: number
}

export type BucketListener = (event: BucketEvent) => void
export type Unsubscribe = () => Promise<void>

/**
 * Pub/sub of bucket events on `ticker#resolution` channels.
 *
 * Subscriptions are reference-counted by the adapter: the first listener of a series
 * subscribes the channel, the last one to leave unsubscribes it. A dropped connection is
 * re-established and every subscription restored.
 */
export interface Bus {
  publish (events: BucketEvent[]): Promise<void>
  subscribe (series: SeriesKey, listener: BucketListener): Promise<Unsubscribe>
  ping (): Promise<void>
  close (): Promise<void>
}

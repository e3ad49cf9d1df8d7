import type { Bucket, BucketRef, Resolution } from '../timeseries/index.js'

/**
 * The durable archive of buckets: DynamoDB table `{env}-sentiment-timeseries`
 * (`PK` = `TICKER#resolution`, `SK` = bucket start ISO), or any endpoint that speaks its
 * protocol (dynalite in embedded mode). Reads leave out buckets whose `ttl` has passed.
 */
export interface Archive {
  /** Writes full bucket states, batched, retrying unprocessed items; rejects if they could not all be written. */
  put (buckets: Bucket[]): Promise<void>
  /** Stored buckets of a series with `from <= start < to`, ascending, unexpired at `now`. */
  range (ticker: string, resolution: Resolution, from: number, to: number, now: number): Promise<Bucket[]>
  /** The stored, unexpired buckets among `refs`. */
  get (refs: BucketRef[], now: number): Promise<Bucket[]>
  /** Resolves when the table answers. */
  ping (): Promise<void>
  close (): Promise<void>
}

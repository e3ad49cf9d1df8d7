import type { Bucket } from '../timeseries/bucket.js'
import type { BucketRef } from '../timeseries/keys.js'
import type { Resolution } from '../timeseries/resolutions.js'

/** A bucket the archive refused for what it is (too large, malformed), not for being unreachable. */
export interface RejectedWrite {
  bucket: Bucket
  error: unknown
}

/**
 * What one {@link Archive.put} did with each bucket. Every bucket given lands in exactly
 * one list.
 */
export interface PutOutcome {
  /** Stored at their rev. */
  written: Bucket[]
  /**
   * Not stored because the archive already holds that bucket at a newer rev, or at the
   * same rev and no less final (another flusher got there first): done for that rev all the same.
   */
  superseded: Bucket[]
  /** Refused for the bucket itself; writing the same state again fails the same way. */
  rejected: RejectedWrite[]
  /** Not written because the archive did not answer; `failure` says why. */
  failed: Bucket[]
  /** The first error that made buckets `failed`. */
  failure?: unknown
}

/**
 * The durable archive of buckets: DynamoDB table `{env}-sentiment-timeseries`
 * (`PK` = `TICKER#resolution`, `SK` = bucket start ISO), or any endpoint that speaks its
 * protocol (dynalite in embedded mode). Reads leave out buckets whose `ttl` has passed.
 */
export interface Archive {
  /**
   * Writes full bucket states, each only if the archive does not already hold a newer or
   * equal `rev` of it: a slow writer whose state went stale can never replace a newer one,
   * whatever order writes arrive in. One exception makes ended buckets final: a state
   * written after the bucket's end (stored `is_partial: false`) replaces the same rev
   * stored while it was open. Resolves with what became of each bucket; an archive
   * that stops answering fails the buckets not yet written rather than rejecting.
   */
  put (buckets: Bucket[]): Promise<PutOutcome>
  /** Stored buckets of a series with `from <= start < to`, ascending, unexpired at `now`. */
  range (ticker: string, resolution: Resolution, from: number, to: number, now: number): Promise<Bucket[]>
  /** The stored, unexpired buckets among `refs`. */
  get (refs: BucketRef[], now: number): Promise<Bucket[]>
  /**
   * A new term, above every term this archive handed out before (an atomic counter in the
   * table): what a hot state counts positions in after it may have lost writes.
   */
  nextTerm (): Promise<number>
  /** Resolves when the table answers. */
  ping (): Promise<void>
  close (): Promise<void>
}

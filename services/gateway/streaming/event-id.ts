import type { BucketEvent } from '../../../shared/ports/index.js'
import { type Bucket, bucketEnd } from '../../../shared/timeseries/index.js'

/**
 * How far before a resume id the gateway replays. Events of different buckets can reach a
 * client out of `last_updated` order (pub/sub per channel, debounce per bucket), so a
 * client's last id does not prove it saw everything older; replaying a state it already
 * holds is harmless because clients keep the higher `rev`.
 */
export const RESUME_GRACE_MS = 10_000

/**
 * The stream time of a bucket state: its `last_updated` (set by the hot state, from the
 * Redis server clock in cluster mode, so every gateway agrees), or its end once it is
 * complete and the change is its completion. Event ids are this time in epoch ms, so they
 * compare across gateways.
 */
export function streamTime (bucket: Bucket, kind: BucketEvent['kind'] | 'resume', now: number): number {
  const end = bucketEnd(bucket.start, bucket.resolution)
  if (kind === 'final' || (kind === 'resume' && end <= now)) return Math.max(bucket.last_updated, end)
  return bucket.last_updated
}

/** The wire id of a stream time. */
export function formatEventId (time: number): string {
  return String(time)
}

/** Reads a resume id (`Last-Event-ID`, `since`); undefined when it is not one of ours. */
export function parseEventId (text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,16}$/.test(text.trim())) return undefined
  const time = Number(text.trim())
  return Number.isSafeInteger(time) ? time : undefined
}

/** True when a bucket belongs in the replay for a client resuming from `since`. */
export function isAfterResumePoint (bucket: Bucket, since: number, now: number): boolean {
  return streamTime(bucket, 'resume', now) >= since - RESUME_GRACE_MS
}

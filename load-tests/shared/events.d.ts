import type { Subscription } from './plan.js'

/** True for the events that carry a bucket (and `accepted_at`). */
export function isBucketEvent (type: string): boolean
/** Checks one streamed event against SPEC §4 and the subscription; a problem, or undefined. */
export function eventProblem (type: string, data: unknown, subscription: Subscription): string | undefined
/** Ingest-to-client latency of a `partial_bucket` event in ms, else undefined. */
export function liveLatencyMs (type: string, data: { accepted_at?: unknown }, receivedAt: number): number | undefined

import type { Backlog, IngestQueue } from '../../shared/ports/ingest-queue.js'

/** How long a producer refused for a full backlog is asked to wait (`Retry-After`, seconds). */
export const BACKLOG_RETRY_AFTER_S = 2

/** `INGEST_BACKLOG_MAX_ITEMS` and `INGEST_BACKLOG_MAX_MB`, in items and bytes. */
export interface AdmissionLimits {
  maxItems: number
  maxBytes: number
}

/** Whether ingest admits batches now, with the backlog it decided on. */
export interface Admission {
  admitting: boolean
  backlog: Backlog
  /** Why ingest refuses (unset while it admits): the backlog against its limit. */
  reason?: string
}

/**
 * Admission control: past the configured backlog of accepted-not-yet-folded items (or
 * bytes), ingest answers 503 `PULSE_ERR_BACKLOG_FULL` with `Retry-After` instead of
 * queueing more than the fold can take. Reads the queue's cached backlog, so it costs
 * nothing per request; a batch already admitted is queued whatever happens after, so
 * nothing accepted is ever dropped by it. Batches admitted at the same moment by several
 * gateways may take the backlog past the limit by at most those batches.
 */
export function admission (queue: IngestQueue, limits: AdmissionLimits): Admission {
  const backlog = queue.backlog()
  if (backlog.items >= limits.maxItems) {
    return { admitting: false, backlog, reason: `backlog full: ${backlog.items} items wait to be folded (limit ${limits.maxItems})` }
  }
  if (backlog.bytes >= limits.maxBytes) {
    return { admitting: false, backlog, reason: `backlog full: ${backlog.bytes} bytes of batches wait to be folded (limit ${limits.maxBytes})` }
  }
  return { admitting: true, backlog }
}

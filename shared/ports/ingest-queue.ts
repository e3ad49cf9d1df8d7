import type { JournalMark, ScoredItem } from '../timeseries/bucket.js'

/** A batch of accepted items as one unit of work. */
export interface IngestBatch {
  /** Queue-assigned id (a BullMQ job id, a journal sequence). */
  id: string
  /**
   * Journal epoch and sequence where the queue has them (the embedded journal): folding a
   * batch whose mark a bucket already holds is a no-op for that bucket, which makes replay
   * after a crash idempotent. Queues without it rely on item dedupe alone.
   */
  mark?: JournalMark
  /**
   * True when this batch may have been handed to a consumer before (a retry, a stalled
   * job taken over, a journal replay after a restart): part of it may already be folded.
   * Dedupe makes folding it again change nothing, and what was folded was published by
   * the fold itself, so a consumer need not act on it; it says what the queue knows.
   */
  redelivered?: boolean
  /** When the gateway accepted the batch, epoch ms (for end-to-end latency). */
  acceptedAt: number
  items: ScoredItem[]
}

export interface QueueCounts {
  waiting: number
  active: number
  failed: number
}

/** Accepted work not yet folded: what admission control weighs. */
export interface Backlog {
  /** Items in batches accepted and not yet folded (duplicates included). */
  items: number
  /** Their size as queued, in bytes (the batches' serialized form; estimated where the queue does not measure it). */
  bytes: number
}

/** Handles one batch; a rejection means "retry later". */
export type BatchHandler = (batch: IngestBatch) => Promise<void>

/**
 * The ingest queue between gateways and aggregator workers.
 *
 * Producers call {@link enqueue}; it resolves only once the batch is durable (a crash or
 * restart after that loses none of it). Consumers call {@link consume} once; batches are
 * delivered at least once, retried with backoff when the handler rejects.
 */
export interface IngestQueue {
  enqueue (items: ScoredItem[], acceptedAt: number): Promise<string>
  consume (handler: BatchHandler): Promise<void>
  counts (): Promise<QueueCounts>
  /**
   * The backlog as this process last knew it: cheap enough to read on every request. A
   * queue shared by several processes refreshes it from each enqueue's reply and, while it
   * is being read, at least every few hundred milliseconds.
   */
  backlog (): Backlog
  /** The backlog read afresh (cluster mode: one script per shard), for readiness and scrapes. */
  refreshBacklog (): Promise<Backlog>
  /** Resolves when the queue's backing service answers. */
  ping (): Promise<void>
  /** Stops consuming (finishing or returning the batch in hand) and closes connections. */
  close (): Promise<void>
}

import type { ScoredItem } from '../timeseries/index.js'

/** A batch of accepted items as one unit of work. */
export interface IngestBatch {
  /** Queue-assigned id (a BullMQ job id, a journal sequence). */
  id: string
  /**
   * Monotonic sequence where the queue has one (the embedded journal): folding a batch
   * whose `seq` a bucket has already seen is a no-op for that bucket, which makes replay
   * after a crash idempotent. Queues without it rely on item dedupe alone.
   */
  seq?: number
  /** When the gateway accepted the batch, epoch ms (for end-to-end latency). */
  acceptedAt: number
  items: ScoredItem[]
}

export interface QueueCounts {
  waiting: number
  active: number
  failed: number
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
  /** Resolves when the queue's backing service answers. */
  ping (): Promise<void>
  /** Stops consuming (finishing or returning the batch in hand) and closes connections. */
  close (): Promise<void>
}

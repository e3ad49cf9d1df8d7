import { mkdir, stat } from 'node:fs/promises'
import type { Backlog, BatchHandler, IngestBatch, IngestQueue, QueueCounts } from '../../ports/ingest-queue.js'
import type { ScoredItem } from '../../timeseries/bucket.js'
import { BatchDelivery } from './delivery.js'
import { loadCheckpoint, loadEpoch, saveCheckpoint } from './journal-meta.js'
import { encodeRecord } from './records.js'
import { SegmentWriter } from './segment-writer.js'
import { replayBatches, scanSegments } from './segments.js'

export interface JournalQueueOptions {
  dir: string
  /** A new segment starts once the open one is this old. Default 1 minute. */
  segmentMs?: number
  /** … or this large. Default 8 MiB. */
  segmentBytes?: number
  now?: () => number
  /** Longest pause between retries of a failing batch. */
  maxBackoffMs?: number
  onError?: (err: unknown, batch: IngestBatch) => void
}

/** What the journal holds on disk. */
export interface JournalStats {
  segments: number
  bytes: number
  /** Every batch up to this sequence is durable elsewhere; the journal no longer holds it. */
  checkpointSeq: number
}

/**
 * The embedded ingest queue: an append-only journal of accepted batches on local disk.
 *
 * Each batch is one framed record (length and CRC-32, see `frames.ts`); `enqueue` resolves
 * once it is written and `fdatasync`ed, so an acknowledged batch survives a crash. A torn
 * tail left by a crash is truncated when the journal opens: a torn record can only ever be
 * the last one, so no acknowledged batch is hidden behind it.
 *
 * Batches carry a {@link JournalMark}: the journal's epoch (a random id made with the
 * journal) and a sequence. Buckets remember the highest mark folded into them, so a replay
 * skips what a bucket already holds; buckets written through another journal never hold
 * this epoch, so they never make a new batch look seen.
 *
 * The journal is bounded by its checkpoint: once every batch up to a sequence is durable
 * elsewhere (its effect in the archive, its item ids in the persisted dedupe slices),
 * {@link checkpoint} records that sequence and deletes the segments wholly below it. A
 * restart replays only the batches after the checkpoint.
 */
export class JournalQueue implements IngestQueue {
  readonly #dir: string
  readonly #epoch: string
  readonly #writer: SegmentWriter
  readonly #delivery: BatchDelivery
  /** Sequences up to this were on disk at open: they replay. */
  readonly #replayUpTo: number
  readonly #replayFrom: number
  #nextSeq: number
  #checkpointSeq: number
  #checkpointing: Promise<void> = Promise.resolve()
  #consuming = false
  #closed = false

  private constructor (options: JournalQueueOptions, epoch: string, checkpointSeq: number, scan: Awaited<ReturnType<typeof scanSegments>>) {
    this.#dir = options.dir
    this.#epoch = epoch
    this.#checkpointSeq = checkpointSeq
    this.#replayFrom = checkpointSeq
    this.#replayUpTo = scan.lastSeq
    this.#nextSeq = Math.max(scan.lastSeq, checkpointSeq) + 1
    this.#writer = new SegmentWriter({
      dir: options.dir,
      segmentMs: options.segmentMs ?? 60_000,
      segmentBytes: options.segmentBytes ?? 8 * 1024 * 1024,
      now: options.now ?? Date.now
    }, scan.segments)
    this.#delivery = new BatchDelivery({ maxBackoffMs: options.maxBackoffMs ?? 30_000, onError: options.onError }, checkpointSeq, scan.pending)
  }

  /**
   * Opens the journal in `dir` (creating it and its epoch if new): deletes what its
   * checkpoint covers, checks the rest, truncates a torn tail, and prepares the batches
   * after the checkpoint for replay.
   */
  static async open (options: JournalQueueOptions): Promise<JournalQueue> {
    await mkdir(options.dir, { recursive: true })
    const epoch = await loadEpoch(options.dir)
    const checkpointSeq = await loadCheckpoint(options.dir)
    return new JournalQueue(options, epoch, checkpointSeq, await scanSegments(options.dir, checkpointSeq))
  }

  /** The random id of this journal; a batch's mark carries it. */
  get epoch (): string {
    return this.#epoch
  }

  async enqueue (items: ScoredItem[], acceptedAt: number): Promise<string> {
    if (this.#closed) throw new Error('journal is closed')
    const seq = this.#nextSeq++
    const batch: IngestBatch = { id: String(seq), mark: { epoch: this.#epoch, seq }, redelivered: false, acceptedAt, items }
    const record = encodeRecord({ seq, acceptedAt, items })
    await this.#writer.append(seq, record, () => this.#delivery.push(batch, record.length))
    return batch.id
  }

  async consume (handler: BatchHandler): Promise<void> {
    if (this.#consuming) throw new Error('journal already has a consumer')
    this.#consuming = true
    const segments = this.#writer.segments.slice()
    this.#delivery.start(handler, () => replayBatches(this.#dir, segments, this.#epoch, this.#replayFrom, this.#replayUpTo))
  }

  async counts (): Promise<QueueCounts> {
    return { waiting: this.#delivery.waiting, active: this.#delivery.active ? 1 : 0, failed: 0 }
  }

  /** Batches accepted since the journal opened and not yet folded. */
  backlog (): Backlog {
    return this.#delivery.backlog
  }

  async refreshBacklog (): Promise<Backlog> {
    return this.backlog()
  }

  async ping (): Promise<void> {
    await stat(this.#dir)
  }

  /** Highest sequence handed to the consumer and finished; every earlier one is finished too. */
  get foldedSeq (): number {
    return this.#delivery.finishedSeq
  }

  get stats (): JournalStats {
    const segments = this.#writer.segments
    return { segments: segments.length, bytes: segments.reduce((sum, s) => sum + s.bytes, 0), checkpointSeq: this.#checkpointSeq }
  }

  /**
   * Declares every batch up to `seq` durable elsewhere: records it (so a restart replays
   * only later batches) and deletes the segments it wholly covers. Never beyond
   * {@link foldedSeq}; a lower `seq` than an earlier checkpoint changes nothing.
   */
  async checkpoint (seq: number): Promise<void> {
    const run = this.#checkpointing.then(async () => {
      const through = Math.min(seq, this.foldedSeq)
      if (through <= this.#checkpointSeq) return
      await saveCheckpoint(this.#dir, through)
      this.#checkpointSeq = through
      await this.#writer.dropThrough(through)
    })
    this.#checkpointing = run.catch(() => {})
    await run
  }

  /** Stops handing out batches (the one in hand finishes) and closes the open segment. */
  async close (): Promise<void> {
    this.#closed = true
    await this.#delivery.close()
    await this.#writer.close()
  }
}

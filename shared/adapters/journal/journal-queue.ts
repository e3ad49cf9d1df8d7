import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { BatchHandler, IngestBatch, IngestQueue, QueueCounts } from '../../ports/index.js'
import type { ScoredItem } from '../../timeseries/index.js'

export interface JournalQueueOptions {
  dir: string
  /** Segments stay at least this long, so dedupe can be rebuilt after a restart. */
  retainMs: number
  /** A new segment starts after this much time. */
  segmentMs?: number
  now?: () => number
  /** Longest pause between retries of a failing batch. */
  maxBackoffMs?: number
  onError?: (err: unknown, batch: IngestBatch) => void
}

interface Segment {
  name: string
  firstSeq: number
  lastSeq: number
  lastAcceptedAt: number
}

interface PendingWrite {
  seq: number
  line: string
  resolve: () => void
  reject: (err: unknown) => void
}

/**
 * The embedded ingest queue: an append-only journal of accepted batches on local disk.
 *
 * `enqueue` resolves once the batch is written and `fdatasync`ed (concurrent enqueues
 * share one sync), so an acknowledged batch survives a crash. Batches are numbered; a
 * restart replays every retained batch in order, and the fold skips buckets that already
 * hold a batch's sequence, which rebuilds dedupe state and finishes unflushed work
 * without counting anything twice. Batches are folded one at a time, in order.
 */
export class JournalQueue implements IngestQueue {
  readonly #options: Required<Omit<JournalQueueOptions, 'onError'>> & Pick<JournalQueueOptions, 'onError'>
  readonly #segments: Segment[] = []
  readonly #backlog: IngestBatch[] = []
  #pendingWrites: PendingWrite[] = []
  #writing = false
  #handle: FileHandle | undefined
  #nextSeq = 1
  #finishedSeq = 0
  #checkpointSeq = 0
  #handler: BatchHandler | undefined
  #active = false
  #closed = false
  #wake: (() => void) | undefined
  #loop: Promise<void> | undefined

  private constructor (options: JournalQueueOptions) {
    this.#options = {
      segmentMs: 3_600_000,
      now: Date.now,
      maxBackoffMs: 30_000,
      ...options
    }
  }

  /** Opens the journal in `dir`, loading every retained batch for replay. */
  static async open (options: JournalQueueOptions): Promise<JournalQueue> {
    const queue = new JournalQueue(options)
    await queue.#load()
    return queue
  }

  async enqueue (items: ScoredItem[], acceptedAt: number): Promise<string> {
    if (this.#closed) throw new Error('journal is closed')
    const batch: IngestBatch = { id: String(this.#nextSeq), seq: this.#nextSeq++, acceptedAt, items }
    await new Promise<void>((resolve, reject) => {
      this.#pendingWrites.push({ seq: batch.seq as number, line: JSON.stringify(batch) + '\n', resolve, reject })
      this.#drainWrites().catch(() => {})
    })
    this.#insertInOrder(batch)
    this.#wake?.()
    return batch.id
  }

  async consume (handler: BatchHandler): Promise<void> {
    if (this.#handler !== undefined) throw new Error('journal already has a consumer')
    this.#handler = handler
    this.#loop = this.#run()
  }

  async counts (): Promise<QueueCounts> {
    return { waiting: this.#backlog.length - (this.#active ? 1 : 0), active: this.#active ? 1 : 0, failed: 0 }
  }

  async ping (): Promise<void> {
    await stat(this.#options.dir)
  }

  /**
   * Declares every batch up to `seq` durable elsewhere (the archive holds its effects):
   * segments wholly below it and older than the retention are deleted.
   */
  async checkpoint (seq: number): Promise<void> {
    this.#checkpointSeq = Math.max(this.#checkpointSeq, seq)
    const horizon = this.#options.now() - this.#options.retainMs
    while (this.#segments.length > 1) {
      const oldest = this.#segments[0] as Segment
      if (oldest.lastSeq > this.#checkpointSeq || oldest.lastAcceptedAt > horizon) break
      this.#segments.shift()
      await rm(join(this.#options.dir, oldest.name), { force: true })
    }
  }

  /** Highest sequence handed to the consumer and finished. */
  get foldedSeq (): number {
    return this.#finishedSeq
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#wake?.()
    await this.#loop
    while (this.#writing || this.#pendingWrites.length > 0) await new Promise((resolve) => setTimeout(resolve, 5))
    await this.#handle?.close()
    this.#handle = undefined
  }

  async #run (): Promise<void> {
    let failures = 0
    while (!this.#closed) {
      const batch = this.#backlog[0]
      if (batch === undefined) {
        await new Promise<void>((resolve) => { this.#wake = resolve })
        this.#wake = undefined
        continue
      }
      this.#active = true
      try {
        await (this.#handler as BatchHandler)(batch)
        this.#backlog.shift()
        this.#finishedSeq = batch.seq as number
        failures = 0
      } catch (err) {
        failures++
        this.#options.onError?.(err, batch)
        const backoff = Math.min(this.#options.maxBackoffMs, 100 * 2 ** Math.min(failures, 16))
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoff * (0.5 + Math.random() / 2))
          this.#wake = () => { clearTimeout(timer); resolve() }
        })
        this.#wake = undefined
      } finally {
        this.#active = false
      }
    }
  }

  async #drainWrites (): Promise<void> {
    if (this.#writing) return
    this.#writing = true
    try {
      while (this.#pendingWrites.length > 0) {
        const writes = this.#pendingWrites
        this.#pendingWrites = []
        try {
          const handle = await this.#currentHandle((writes[0] as PendingWrite).seq)
          await handle.appendFile(writes.map((w) => w.line).join(''))
          await handle.datasync()
          const segment = this.#segments.at(-1) as Segment
          segment.lastSeq = Math.max(segment.lastSeq, (writes.at(-1) as PendingWrite).seq)
          segment.lastAcceptedAt = this.#options.now()
          for (const write of writes) write.resolve()
        } catch (err) {
          for (const write of writes) write.reject(err)
        }
      }
    } finally {
      this.#writing = false
    }
  }

  async #currentHandle (firstSeq: number): Promise<FileHandle> {
    const now = this.#options.now()
    const tail = this.#segments.at(-1)
    if (tail === undefined || this.#handle === undefined || now - segmentStartOf(tail) >= this.#options.segmentMs) {
      await this.#handle?.close()
      const name = `${String(now).padStart(15, '0')}-${String(firstSeq).padStart(12, '0')}.ndjson`
      this.#handle = await open(join(this.#options.dir, name), 'a')
      this.#segments.push({ name, firstSeq, lastSeq: firstSeq - 1, lastAcceptedAt: now })
    }
    return this.#handle
  }

  #insertInOrder (batch: IngestBatch): void {
    let at = this.#backlog.length
    // The head may be in the consumer's hands: never insert before it.
    while (at > 1 && (this.#backlog[at - 1]?.seq as number) > (batch.seq as number)) at--
    this.#backlog.splice(at, 0, batch)
  }

  async #load (): Promise<void> {
    await mkdir(this.#options.dir, { recursive: true })
    const names = (await readdir(this.#options.dir)).filter((n) => n.endsWith('.ndjson')).sort()
    for (const name of names) {
      const text = await readFile(join(this.#options.dir, name), 'utf8')
      let firstSeq = Infinity
      let lastSeq = 0
      let lastAcceptedAt = 0
      for (const line of text.split('\n')) {
        if (line.length === 0) continue
        let batch: IngestBatch
        try {
          batch = JSON.parse(line) as IngestBatch
        } catch {
          // A torn last line from a crash mid-write: it was never acknowledged.
          continue
        }
        const seq = batch.seq as number
        firstSeq = Math.min(firstSeq, seq)
        lastSeq = Math.max(lastSeq, seq)
        lastAcceptedAt = Math.max(lastAcceptedAt, batch.acceptedAt)
        this.#backlog.push(batch)
        this.#nextSeq = Math.max(this.#nextSeq, seq + 1)
      }
      this.#segments.push({ name, firstSeq: Number.isFinite(firstSeq) ? firstSeq : lastSeq + 1, lastSeq, lastAcceptedAt })
    }
    this.#backlog.sort((a, b) => (a.seq as number) - (b.seq as number))
  }
}

function segmentStartOf (segment: Segment): number {
  return Number(segment.name.slice(0, 15))
}

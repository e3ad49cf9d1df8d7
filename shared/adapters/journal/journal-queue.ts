import { randomUUID } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { crc32 } from 'node:zlib'
import { faultPoint } from '../../fault-points.js'
import type { BatchHandler, IngestBatch, IngestQueue, QueueCounts } from '../../ports/index.js'
import { type ScoredItem, UNNAMED_EPOCH } from '../../timeseries/index.js'

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
  /** Written before records were framed and journals had an epoch (one JSON batch per line). */
  legacy: boolean
  firstSeq: number
  lastSeq: number
  lastAcceptedAt: number
}

interface PendingWrite {
  seq: number
  frame: Buffer
  resolve: () => void
  reject: (err: unknown) => void
}

/** What a record holds; the epoch is the journal's, not repeated per record. */
interface RecordBody {
  seq: number
  acceptedAt: number
  items: ScoredItem[]
}

/** Segment files: `<created ms, 15 digits>-<first seq, 12 digits>.journal`. */
const SEGMENT_SUFFIX = '.journal'
/** Segments of the earlier format, read (never written) so an upgrade replays them. */
const LEGACY_SUFFIX = '.ndjson'
const EPOCH_FILE = 'epoch'
/** Frame header: payload length (u32 BE), CRC-32 of the payload (u32 BE). */
const HEADER_BYTES = 8
/** Larger than any accepted batch (bodies are at most 1 MB); a bigger length is a torn header. */
const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
/** Appends are written in pieces of this size (and read back in chunks of {@link READ_CHUNK_BYTES}). */
const WRITE_CHUNK_BYTES = 64 * 1024
const READ_CHUNK_BYTES = 1024 * 1024

/** A record framed for the journal: length + checksum, so a torn or corrupt tail is recognised. */
function frameRecord (body: RecordBody): Buffer {
  const payload = Buffer.from(JSON.stringify(body), 'utf8')
  const header = Buffer.alloc(HEADER_BYTES)
  header.writeUInt32BE(payload.length, 0)
  header.writeUInt32BE(crc32(payload), 4)
  return Buffer.concat([header, payload])
}

/** One intact record read back, with the offset just past it. */
interface ReadRecord {
  body: RecordBody
  end: number
}

/**
 * Streams the intact records of a segment from the start, chunk by chunk (a day of journal
 * is never in memory at once). Stops at the first frame that is incomplete or fails its
 * checksum; `result.goodBytes` is then where the intact prefix ends.
 */
async function * readRecords (path: string, result: { goodBytes: number, size: number }): AsyncGenerator<ReadRecord> {
  const handle = await open(path, 'r')
  try {
    result.size = (await handle.stat()).size
    let pending = Buffer.alloc(0)
    let pendingAt = 0
    let position = 0
    for (;;) {
      while (pending.length >= HEADER_BYTES) {
        const length = pending.readUInt32BE(0)
        if (length > MAX_PAYLOAD_BYTES) return
        if (pending.length < HEADER_BYTES + length) break
        const payload = pending.subarray(HEADER_BYTES, HEADER_BYTES + length)
        if (crc32(payload) !== pending.readUInt32BE(4)) return
        let body: RecordBody
        try {
          body = JSON.parse(payload.toString('utf8')) as RecordBody
        } catch {
          return
        }
        pendingAt += HEADER_BYTES + length
        pending = pending.subarray(HEADER_BYTES + length)
        result.goodBytes = pendingAt
        yield { body, end: pendingAt }
      }
      const chunk = Buffer.alloc(Math.max(READ_CHUNK_BYTES, HEADER_BYTES + (pending.length >= HEADER_BYTES ? pending.readUInt32BE(0) : 0)))
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, position)
      if (bytesRead === 0) return
      position += bytesRead
      pending = pending.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([pending, chunk.subarray(0, bytesRead)])
    }
  } finally {
    await handle.close()
  }
}

/**
 * Streams the batches of a segment in the earlier format, one JSON batch per line. A line
 * that does not parse is a torn last line from a crash, never acknowledged: skipped.
 */
async function * readLegacyRecords (path: string, result: { goodBytes: number, size: number }): AsyncGenerator<ReadRecord> {
  result.size = (await stat(path)).size
  result.goodBytes = result.size
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity })
  for await (const line of lines) {
    if (line.length === 0) continue
    try {
      const batch = JSON.parse(line) as RecordBody
      yield { body: { seq: batch.seq, acceptedAt: batch.acceptedAt, items: batch.items }, end: 0 }
    } catch {}
  }
}

function readSegment (path: string, legacy: boolean, result: { goodBytes: number, size: number }): AsyncGenerator<ReadRecord> {
  return legacy ? readLegacyRecords(path, result) : readRecords(path, result)
}

/** Makes a created or renamed entry of `dir` survive a crash. */
async function syncDirectory (dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** The journal's epoch: created once with the journal, random, kept in `dir/epoch`. */
async function loadEpoch (dir: string): Promise<string> {
  const path = join(dir, EPOCH_FILE)
  const existing = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw err
  })
  if (existing !== undefined && existing.trim() !== '') return existing.trim()
  const epoch = randomUUID()
  const temporary = `${path}.${process.pid}.tmp`
  const handle = await open(temporary, 'w')
  try {
    await handle.writeFile(epoch)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temporary, path)
  await syncDirectory(dir)
  return epoch
}

/**
 * The embedded ingest queue: an append-only journal of accepted batches on local disk.
 *
 * Each batch is one record framed with its length and a CRC-32. `enqueue` resolves once
 * the record is written and `fdatasync`ed (concurrent enqueues share one sync), so an
 * acknowledged batch survives a crash. A write that fails part-way is cut off (the segment
 * is truncated back to its last intact record) before anything else is appended, and a
 * torn tail left by a crash is truncated when the journal opens: a torn record can only
 * ever be the last one, so no acknowledged batch is hidden behind it.
 *
 * Batches carry a {@link JournalMark}: the journal's epoch (a random id made with the
 * journal) and a sequence. A restart replays every retained batch in order, streamed from
 * disk, and the fold skips buckets that already hold a batch's mark, which rebuilds dedupe
 * state and finishes unflushed work without counting anything twice; buckets written
 * through another journal never hold this epoch, so they never make a new batch look seen.
 * Batches are folded one at a time, in order.
 */
export class JournalQueue implements IngestQueue {
  readonly #options: Required<Omit<JournalQueueOptions, 'onError'>> & Pick<JournalQueueOptions, 'onError'>
  readonly #epoch: string
  readonly #segments: Segment[] = []
  readonly #backlog: IngestBatch[] = []
  #pendingWrites: PendingWrite[] = []
  #writing = false
  #handle: FileHandle | undefined
  /** Bytes of the open segment that hold intact, acknowledged records. */
  #goodBytes = 0
  /** A write failed after it may have put bytes on disk: truncate to {@link #goodBytes} first. */
  #needsRepair = false
  #nextSeq = 1
  /** Batches on disk at open, not yet replayed. */
  #replayLeft = 0
  #replayUpTo = 0
  #finishedSeq = 0
  #checkpointSeq = 0
  #handler: BatchHandler | undefined
  #active = false
  #closed = false
  #wake: (() => void) | undefined
  #loop: Promise<void> | undefined

  private constructor (options: JournalQueueOptions, epoch: string) {
    this.#options = {
      segmentMs: 3_600_000,
      now: Date.now,
      maxBackoffMs: 30_000,
      ...options
    }
    this.#epoch = epoch
  }

  /**
   * Opens the journal in `dir` (creating it and its epoch if new): checks every retained
   * segment, truncates a torn tail, and prepares the retained batches for replay.
   */
  static async open (options: JournalQueueOptions): Promise<JournalQueue> {
    await mkdir(options.dir, { recursive: true })
    const queue = new JournalQueue(options, await loadEpoch(options.dir))
    await queue.#scan()
    return queue
  }

  /** The random id of this journal; a batch's mark carries it. */
  get epoch (): string {
    return this.#epoch
  }

  async enqueue (items: ScoredItem[], acceptedAt: number): Promise<string> {
    if (this.#closed) throw new Error('journal is closed')
    const seq = this.#nextSeq++
    const batch: IngestBatch = { id: String(seq), mark: { epoch: this.#epoch, seq }, redelivered: false, acceptedAt, items }
    await new Promise<void>((resolve, reject) => {
      this.#pendingWrites.push({ seq, frame: frameRecord({ seq, acceptedAt, items }), resolve, reject })
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
    const queued = this.#replayLeft + this.#backlog.length
    return { waiting: queued - (this.#active ? 1 : 0), active: this.#active ? 1 : 0, failed: 0 }
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
    // First what was on disk at open (it may have been folded, wholly or in part, before
    // the restart: redelivered), then the batches accepted since.
    for (const segment of this.#segments.slice()) {
      if (segment.firstSeq > this.#replayUpTo) break
      const path = join(this.#options.dir, segment.name)
      const epoch = segment.legacy ? UNNAMED_EPOCH : this.#epoch
      for await (const { body } of readSegment(path, segment.legacy, { goodBytes: 0, size: 0 })) {
        if (body.seq > this.#replayUpTo) break
        const batch: IngestBatch = {
          id: String(body.seq), mark: { epoch, seq: body.seq }, redelivered: true, acceptedAt: body.acceptedAt, items: body.items
        }
        if (!await this.#deliver(batch)) return
        this.#replayLeft--
      }
    }
    this.#replayLeft = 0
    while (!this.#closed) {
      const batch = this.#backlog[0]
      if (batch === undefined) {
        await new Promise<void>((resolve) => { this.#wake = resolve })
        this.#wake = undefined
        continue
      }
      if (!await this.#deliver(batch)) return
      this.#backlog.shift()
    }
  }

  /** Hands `batch` to the consumer until it succeeds; false when the journal closed first. */
  async #deliver (batch: IngestBatch): Promise<boolean> {
    let failures = 0
    let attempt = batch
    while (!this.#closed) {
      this.#active = true
      try {
        await (this.#handler as BatchHandler)(attempt)
        this.#finishedSeq = attempt.mark?.seq ?? this.#finishedSeq
        return true
      } catch (err) {
        failures++
        this.#options.onError?.(err, attempt)
        attempt = { ...attempt, redelivered: true }
      } finally {
        this.#active = false
      }
      const backoff = Math.min(this.#options.maxBackoffMs, 100 * 2 ** Math.min(failures, 16))
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoff * (0.5 + Math.random() / 2))
        this.#wake = () => { clearTimeout(timer); resolve() }
      })
      this.#wake = undefined
    }
    return false
  }

  async #drainWrites (): Promise<void> {
    if (this.#writing) return
    this.#writing = true
    try {
      while (this.#pendingWrites.length > 0) {
        const writes = this.#pendingWrites
        this.#pendingWrites = []
        try {
          await this.#repair()
          const handle = await this.#currentHandle((writes[0] as PendingWrite).seq)
          const frames = writes.length === 1 ? (writes[0] as PendingWrite).frame : Buffer.concat(writes.map((w) => w.frame))
          this.#needsRepair = true
          await this.#writeAt(handle, frames, this.#goodBytes)
          await handle.datasync()
          this.#goodBytes += frames.length
          this.#needsRepair = false
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

  /** Writes all of `data` at `position`, in pieces (a failure may leave some of it on disk). */
  async #writeAt (handle: FileHandle, data: Buffer, position: number): Promise<void> {
    let written = 0
    while (written < data.length) {
      const { bytesWritten } = await handle.write(data, written, Math.min(WRITE_CHUNK_BYTES, data.length - written), position + written)
      written += bytesWritten
      if (written < data.length) await faultPoint('journal.append-partial')
    }
  }

  /** Cuts the open segment back to its intact records after a failed write. */
  async #repair (): Promise<void> {
    if (!this.#needsRepair || this.#handle === undefined) {
      this.#needsRepair = false
      return
    }
    await this.#handle.truncate(this.#goodBytes)
    await this.#handle.datasync()
    this.#needsRepair = false
  }

  async #currentHandle (firstSeq: number): Promise<FileHandle> {
    const now = this.#options.now()
    const tail = this.#segments.at(-1)
    if (tail === undefined || this.#handle === undefined || now - segmentStartOf(tail) >= this.#options.segmentMs) {
      await this.#handle?.close()
      this.#handle = undefined
      const name = `${String(now).padStart(15, '0')}-${String(firstSeq).padStart(12, '0')}${SEGMENT_SUFFIX}`
      const handle = await open(join(this.#options.dir, name), 'w')
      await syncDirectory(this.#options.dir)
      this.#handle = handle
      this.#goodBytes = 0
      this.#segments.push({ name, legacy: false, firstSeq, lastSeq: firstSeq - 1, lastAcceptedAt: now })
    }
    return this.#handle
  }

  #insertInOrder (batch: IngestBatch): void {
    const seqOf = (b: IngestBatch | undefined): number => b?.mark?.seq ?? 0
    let at = this.#backlog.length
    // The head may be in the consumer's hands: never insert before it.
    while (at > 1 && seqOf(this.#backlog[at - 1]) > seqOf(batch)) at--
    this.#backlog.splice(at, 0, batch)
  }

  /**
   * Reads every segment once, streaming: finds each one's sequence range, truncates a torn
   * tail of the last segment, and refuses to start on a damaged earlier segment (its later
   * records could be acknowledged batches). Segments of the earlier format come first (their
   * names sort by creation time too); new sequences continue after theirs.
   */
  async #scan (): Promise<void> {
    const names = (await readdir(this.#options.dir)).filter((n) => n.endsWith(SEGMENT_SUFFIX) || n.endsWith(LEGACY_SUFFIX)).sort()
    for (const [index, name] of names.entries()) {
      const path = join(this.#options.dir, name)
      const legacy = name.endsWith(LEGACY_SUFFIX)
      const extent = { goodBytes: 0, size: 0 }
      let firstSeq = Infinity
      let lastSeq = 0
      let lastAcceptedAt = 0
      for await (const { body } of readSegment(path, legacy, extent)) {
        firstSeq = Math.min(firstSeq, body.seq)
        lastSeq = Math.max(lastSeq, body.seq)
        lastAcceptedAt = Math.max(lastAcceptedAt, body.acceptedAt)
        this.#replayLeft++
      }
      if (extent.goodBytes < extent.size) {
        if (index < names.length - 1) {
          throw new Error(`journal segment ${path} is damaged at byte ${extent.goodBytes} of ${extent.size}; move it aside to start without it`)
        }
        // A crash mid-append: the torn record was never acknowledged.
        const handle = await open(path, 'r+')
        try {
          await handle.truncate(extent.goodBytes)
          await handle.datasync()
        } finally {
          await handle.close()
        }
      }
      this.#nextSeq = Math.max(this.#nextSeq, lastSeq + 1)
      this.#segments.push({ name, legacy, firstSeq: Number.isFinite(firstSeq) ? firstSeq : lastSeq + 1, lastSeq, lastAcceptedAt })
    }
    this.#replayUpTo = this.#nextSeq - 1
  }
}

function segmentStartOf (segment: Segment): number {
  return Number(segment.name.slice(0, 15))
}

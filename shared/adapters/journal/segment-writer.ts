import { open, rm } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { faultPoint } from '../../fault-points.js'
import { syncDirectory } from './durable-files.js'
import { type Segment, segmentCreatedAt, segmentName } from './segments.js'

export interface SegmentWriterOptions {
  dir: string
  /** A new segment starts once the open one is this old. */
  segmentMs: number
  /** … or this large. */
  segmentBytes: number
  now: () => number
}

interface PendingWrite {
  seq: number
  frame: Buffer
  /** Runs once the record is durable, before any later record's, in sequence order. */
  durable: () => void
  resolve: () => void
  reject: (err: unknown) => void
}

/** Appends are written in pieces of this size. */
const WRITE_CHUNK_BYTES = 64 * 1024

/**
 * The journal's segments on disk and the write pipeline that appends to the newest.
 *
 * Concurrent appends share one write and one `fdatasync`. A write that fails part-way is
 * cut off (the segment is truncated back to its last intact record) before anything else
 * is appended. Segments roll by age and size, so a checkpoint can delete whole files soon
 * after their batches are durable elsewhere.
 */
export class SegmentWriter {
  readonly #options: SegmentWriterOptions
  readonly #segments: Segment[]
  #pending: PendingWrite[] = []
  #writing = false
  #drained: Promise<void> = Promise.resolve()
  #handle: FileHandle | undefined
  /** A write failed after it may have put bytes on disk: truncate the open segment first. */
  #needsRepair = false

  /** `segments`: those found on disk, oldest first; they are never appended to. */
  constructor (options: SegmentWriterOptions, segments: Segment[]) {
    this.#options = options
    this.#segments = segments
  }

  /** Live segments, oldest first. */
  get segments (): readonly Segment[] {
    return this.#segments
  }

  /** Appends a framed record; resolves once it is on disk and synced. */
  async append (seq: number, frame: Buffer, durable: () => void): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#pending.push({ seq, frame, durable, resolve, reject })
      if (!this.#writing) {
        this.#writing = true
        this.#drained = this.#drain()
      }
    })
  }

  /**
   * Deletes the segments whose every batch is at or below `seq`. The open segment goes too
   * when it qualifies and no append is under way; the next append starts a new one.
   */
  async dropThrough (seq: number): Promise<void> {
    const tail = this.#segments.at(-1)
    if (tail !== undefined && tail.lastSeq <= seq && this.#handle !== undefined && !this.#writing) {
      const handle = this.#handle
      this.#handle = undefined
      this.#needsRepair = false
      await handle.close()
    }
    while (this.#segments.length > 0) {
      const oldest = this.#segments[0] as Segment
      if (oldest.lastSeq > seq || (this.#handle !== undefined && this.#segments.length === 1)) break
      this.#segments.shift()
      await rm(join(this.#options.dir, oldest.name), { force: true })
    }
  }

  /** Waits for appends under way, then closes the open segment. */
  async close (): Promise<void> {
    while (this.#writing) await this.#drained
    await this.#handle?.close()
    this.#handle = undefined
  }

  /** Writes pending appends in groups; clears `#writing` in the same turn it finds none left. */
  async #drain (): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const writes = this.#pending
        this.#pending = []
        try {
          await this.#repair()
          const handle = await this.#openSegment((writes[0] as PendingWrite).seq)
          const segment = this.#segments.at(-1) as Segment
          const frames = writes.length === 1 ? (writes[0] as PendingWrite).frame : Buffer.concat(writes.map((w) => w.frame))
          this.#needsRepair = true
          await this.#writeAt(handle, frames, segment.bytes)
          await handle.datasync()
          this.#needsRepair = false
          segment.bytes += frames.length
          segment.lastSeq = Math.max(segment.lastSeq, (writes.at(-1) as PendingWrite).seq)
          for (const write of writes) write.durable()
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
    await this.#handle.truncate((this.#segments.at(-1) as Segment).bytes)
    await this.#handle.datasync()
    this.#needsRepair = false
  }

  /** The open segment, after starting a new one when there is none or the open one is old or large enough. */
  async #openSegment (firstSeq: number): Promise<FileHandle> {
    const now = this.#options.now()
    const tail = this.#segments.at(-1)
    const due = tail === undefined || now - segmentCreatedAt(tail) >= this.#options.segmentMs || tail.bytes >= this.#options.segmentBytes
    if (this.#handle !== undefined && !due) return this.#handle
    await this.#handle?.close()
    this.#handle = undefined
    const name = segmentName(now, firstSeq)
    const handle = await open(join(this.#options.dir, name), 'w')
    await syncDirectory(this.#options.dir)
    this.#handle = handle
    this.#segments.push({ name, firstSeq, lastSeq: firstSeq - 1, bytes: 0 })
    return handle
  }
}

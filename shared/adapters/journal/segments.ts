import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { IngestBatch } from '../../ports/ingest-queue.js'
import { type Extent, truncateFile } from './frames.js'
import { readRecords } from './records.js'

/**
 * Journal segment files: `<created ms, 15 digits>-<first seq, 12 digits>.journal`, so their
 * names sort by creation time and by sequence alike.
 */
export interface Segment {
  name: string
  firstSeq: number
  /** Highest sequence written to it; `firstSeq - 1` while it holds none. */
  lastSeq: number
  /** Bytes of intact records. */
  bytes: number
}

const SEGMENT_SUFFIX = '.journal'

export function segmentName (createdAt: number, firstSeq: number): string {
  return `${String(createdAt).padStart(15, '0')}-${String(firstSeq).padStart(12, '0')}${SEGMENT_SUFFIX}`
}

export function segmentCreatedAt (segment: Pick<Segment, 'name'>): number {
  return Number(segment.name.slice(0, 15))
}

function firstSeqOfName (name: string): number {
  return Number(name.slice(16, 28))
}

/** What a journal holds on disk when it opens. */
export interface ScanResult {
  /** Segments still holding batches after the checkpoint, oldest first. */
  segments: Segment[]
  /** Highest sequence on disk (0 when none). */
  lastSeq: number
  /** Batches after the checkpoint: they replay. */
  pending: number
}

/**
 * Reads the segments of `dir` once, streaming. Deletes those wholly at or below
 * `checkpointSeq` (a crash between a checkpoint and its deletions leaves them), truncates a
 * torn tail of the last segment (a crash mid-append: that record was never acknowledged),
 * and refuses to open on a damaged earlier segment, whose later records could be
 * acknowledged batches.
 */
export async function scanSegments (dir: string, checkpointSeq: number): Promise<ScanResult> {
  const names = (await readdir(dir)).filter((name) => name.endsWith(SEGMENT_SUFFIX)).sort()
  const segments: Segment[] = []
  let lastSeq = 0
  let pending = 0
  for (const [index, name] of names.entries()) {
    const path = join(dir, name)
    const next = names[index + 1]
    // Every sequence of this segment is below the next one's first: no need to read it.
    if (next !== undefined && firstSeqOfName(next) - 1 <= checkpointSeq) {
      await rm(path, { force: true })
      continue
    }
    const extent: Extent = { goodBytes: 0, size: 0 }
    let first = Infinity
    let last = 0
    for await (const body of readRecords(path, extent)) {
      first = Math.min(first, body.seq)
      last = Math.max(last, body.seq)
      if (body.seq > checkpointSeq) pending++
    }
    if (extent.goodBytes < extent.size) {
      if (next !== undefined) {
        throw new Error(`journal segment ${path} is damaged at byte ${extent.goodBytes} of ${extent.size}; move it aside to start without it`)
      }
      await truncateFile(path, extent.goodBytes)
    }
    const firstSeq = Number.isFinite(first) ? first : firstSeqOfName(name)
    const segment = { name, firstSeq, lastSeq: Math.max(last, firstSeq - 1), bytes: extent.goodBytes }
    lastSeq = Math.max(lastSeq, segment.lastSeq)
    // New batches always go to a new segment, so an old one wholly checkpointed is done.
    if (segment.lastSeq <= checkpointSeq) await rm(path, { force: true })
    else segments.push(segment)
  }
  return { segments, lastSeq, pending }
}

/**
 * The batches of `segments` after `after` and up to `upTo`, streamed from disk in order,
 * marked as redelivered: they may have been folded, wholly or in part, before a restart.
 */
export async function * replayBatches (dir: string, segments: readonly Segment[], epoch: string, after: number, upTo: number): AsyncGenerator<IngestBatch> {
  for (const segment of segments) {
    if (segment.lastSeq <= after) continue
    if (segment.firstSeq > upTo) return
    for await (const body of readRecords(join(dir, segment.name), { goodBytes: 0, size: 0 })) {
      if (body.seq <= after) continue
      if (body.seq > upTo) return
      yield { id: String(body.seq), mark: { epoch, seq: body.seq }, redelivered: true, acceptedAt: body.acceptedAt, items: body.items }
    }
  }
}

import { open } from 'node:fs/promises'
import { crc32 } from 'node:zlib'

/*
 * Framing of append-only files (journal segments, persisted dedupe slices): each record is
 * its payload's length (u32 BE) and CRC-32 (u32 BE), then the payload. A record cut short
 * by a crash, or damaged on disk, fails its length or checksum, so a reader recognises the
 * end of the intact prefix.
 */

export const HEADER_BYTES = 8
/** Larger than any record Pulse writes (batch bodies are at most 1 MB); a bigger length is a torn header. */
const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
/** Files are read back in chunks of this size: a day of journal is never in memory at once. */
const READ_CHUNK_BYTES = 1024 * 1024

/** A payload framed with its length and checksum. */
export function frame (payload: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_BYTES)
  header.writeUInt32BE(payload.length, 0)
  header.writeUInt32BE(crc32(payload), 4)
  return Buffer.concat([header, payload])
}

/** How much of a file a read found intact. */
export interface Extent {
  /** Bytes from the start that hold intact records (as far as the reader went). */
  goodBytes: number
  size: number
}

/** One intact record and where it lies in the file. */
export interface Frame {
  payload: Buffer
  start: number
  end: number
}

/**
 * Streams the intact records of the file at `path` from its start. Stops at the first
 * record that is incomplete or fails its checksum; `extent.goodBytes` then says where the
 * intact prefix ends (and `extent.size` how long the file is).
 */
export async function * readFrames (path: string, extent: Extent): AsyncGenerator<Frame> {
  const handle = await open(path, 'r')
  try {
    extent.size = (await handle.stat()).size
    extent.goodBytes = 0
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
        const start = pendingAt
        pendingAt += HEADER_BYTES + length
        pending = pending.subarray(HEADER_BYTES + length)
        extent.goodBytes = pendingAt
        yield { payload, start, end: pendingAt }
      }
      const wanted = HEADER_BYTES + (pending.length >= HEADER_BYTES ? pending.readUInt32BE(0) : 0)
      const chunk = Buffer.alloc(Math.max(READ_CHUNK_BYTES, wanted))
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, position)
      if (bytesRead === 0) return
      position += bytesRead
      pending = pending.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([pending, chunk.subarray(0, bytesRead)])
    }
  } finally {
    await handle.close()
  }
}

/** Cuts the file at `path` back to `bytes` (its intact prefix) and syncs it. */
export async function truncateFile (path: string, bytes: number): Promise<void> {
  const handle = await open(path, 'r+')
  try {
    await handle.truncate(bytes)
    await handle.datasync()
  } finally {
    await handle.close()
  }
}

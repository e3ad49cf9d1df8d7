import type { ScoredItem } from '../../timeseries/bucket.js'
import { type Extent, frame, readFrames } from './frames.js'

/** What a journal record holds: one accepted batch. The epoch is the journal's, not repeated per record. */
export interface RecordBody {
  seq: number
  acceptedAt: number
  items: ScoredItem[]
}

/** A batch framed for the journal. */
export function encodeRecord (body: RecordBody): Buffer {
  return frame(Buffer.from(JSON.stringify(body), 'utf8'))
}

/**
 * Streams the intact batches of a segment, in order. A record that passes its checksum but
 * does not parse counts as damage: the intact prefix ends before it.
 */
export async function * readRecords (path: string, extent: Extent): AsyncGenerator<RecordBody> {
  for await (const { payload, start } of readFrames(path, extent)) {
    let body: RecordBody
    try {
      body = JSON.parse(payload.toString('utf8')) as RecordBody
    } catch {
      extent.goodBytes = start
      return
    }
    yield body
  }
}

import { mkdir, open, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { DEDUPE_HASH_BYTES, dedupeSliceMs } from '../../timeseries/dedupe.js'
import { syncDirectory } from './durable-files.js'
import { type Extent, frame, readFrames, truncateFile } from './frames.js'

/** Fingerprints recorded in one dedupe slice (8-character latin1 strings, as the memory hot state keeps them). */
export interface SeenSlice {
  slice: number
  fingerprints: string[]
}

const SUFFIX = '.seen'

/** `<slice length ms>-<slice number>.seen`: a file stays meaningful if the window changes. */
function fileName (sliceMs: number, slice: number): string {
  return `${sliceMs}-${String(slice).padStart(12, '0')}${SUFFIX}`
}

function parseName (name: string): { sliceMs: number, slice: number } | undefined {
  const match = /^(\d+)-(\d+)\.seen$/.exec(name)
  return match === null ? undefined : { sliceMs: Number(match[1]), slice: Number(match[2]) }
}

/**
 * The dedupe slices of embedded mode persisted on their own (`DATA_DIR/dedupe`), so the
 * journal need not be kept for the dedupe window to rebuild them: one append-only file per
 * slice of framed records, each record a run of 8-byte item fingerprints. A slice file is
 * deleted whole once every fingerprint in it is past the window, as the slice in memory is.
 *
 * Only fingerprints of batches at or below the journal's checkpoint are saved here; later
 * ones are rebuilt by replaying the journal, together with their effect on the buckets.
 */
export class DedupeStore {
  readonly #dir: string
  readonly #windowMs: number

  private constructor (dir: string, windowMs: number) {
    this.#dir = dir
    this.#windowMs = windowMs
  }

  static async open (options: { dir: string, windowMs: number }): Promise<DedupeStore> {
    await mkdir(options.dir, { recursive: true })
    return new DedupeStore(options.dir, options.windowMs)
  }

  /**
   * Reads every slice still inside the window into `restore` (deleting the expired ones) and
   * returns how many fingerprints it read. A slice saved under another window length is
   * restored into the slice of today's length that holds its end, so it is remembered at
   * least the window from then. A torn last record (a crash mid-save, before the checkpoint
   * it was for) is cut off.
   */
  async load (now: number, restore: (slice: number, fingerprints: string[]) => void): Promise<number> {
    const sliceMs = dedupeSliceMs(this.#windowMs)
    let count = 0
    for (const name of (await readdir(this.#dir)).sort()) {
      const parsed = parseName(name)
      if (parsed === undefined) continue
      const path = join(this.#dir, name)
      const end = (parsed.slice + 1) * parsed.sliceMs
      if (end + this.#windowMs <= now) {
        await rm(path, { force: true })
        continue
      }
      const slice = parsed.sliceMs === sliceMs ? parsed.slice : Math.floor((end - 1) / sliceMs)
      const extent: Extent = { goodBytes: 0, size: 0 }
      for await (const { payload } of readFrames(path, extent)) {
        const text = payload.toString('latin1')
        const fingerprints: string[] = []
        for (let at = 0; at + DEDUPE_HASH_BYTES <= text.length; at += DEDUPE_HASH_BYTES) fingerprints.push(text.slice(at, at + DEDUPE_HASH_BYTES))
        restore(slice, fingerprints)
        count += fingerprints.length
      }
      if (extent.goodBytes < extent.size) await truncateFile(path, extent.goodBytes)
    }
    return count
  }

  /** Appends the fingerprints to their slices' files and syncs them; resolves once they survive a crash. */
  async save (slices: readonly SeenSlice[]): Promise<void> {
    const sliceMs = dedupeSliceMs(this.#windowMs)
    const bySlice = new Map<number, string[]>()
    for (const { slice, fingerprints } of slices) {
      const list = bySlice.get(slice)
      if (list === undefined) bySlice.set(slice, [...fingerprints])
      else list.push(...fingerprints)
    }
    let created = false
    for (const [slice, fingerprints] of bySlice) {
      const handle = await open(join(this.#dir, fileName(sliceMs, slice)), 'a')
      try {
        const size = (await handle.stat()).size
        created ||= size === 0
        try {
          await handle.write(frame(Buffer.from(fingerprints.join(''), 'latin1')))
          await handle.datasync()
        } catch (err) {
          // A record cut short would hide every later one: take it back off.
          await handle.truncate(size).catch(() => {})
          throw err
        }
      } finally {
        await handle.close()
      }
    }
    if (created) await syncDirectory(this.#dir)
  }

  /** Deletes slice files whose every fingerprint is past the window. */
  async sweep (now: number): Promise<void> {
    for (const name of await readdir(this.#dir)) {
      const parsed = parseName(name)
      if (parsed !== undefined && (parsed.slice + 1) * parsed.sliceMs + this.#windowMs <= now) await rm(join(this.#dir, name), { force: true })
    }
  }
}

import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { readSmallFile, replaceFileDurably } from './durable-files.js'

/*
 * The two small facts a journal keeps beside its segments: its epoch (`dir/epoch`) and its
 * checkpoint (`dir/checkpoint`), each replaced atomically.
 */

const EPOCH_FILE = 'epoch'
const CHECKPOINT_FILE = 'checkpoint'

/** The journal's epoch: created once with the journal, random. */
export async function loadEpoch (dir: string): Promise<string> {
  const existing = await readSmallFile(join(dir, EPOCH_FILE))
  if (existing !== undefined) return existing
  const epoch = randomUUID()
  await replaceFileDurably(dir, join(dir, EPOCH_FILE), epoch)
  return epoch
}

/** The highest sequence whose batch and every earlier one are durable elsewhere; 0 for none. */
export async function loadCheckpoint (dir: string): Promise<number> {
  const text = await readSmallFile(join(dir, CHECKPOINT_FILE))
  if (text === undefined) return 0
  const seq = Number(text)
  if (!Number.isSafeInteger(seq) || seq < 0) throw new Error(`journal checkpoint ${join(dir, CHECKPOINT_FILE)} holds '${text}', not a sequence`)
  return seq
}

export async function saveCheckpoint (dir: string, seq: number): Promise<void> {
  await replaceFileDurably(dir, join(dir, CHECKPOINT_FILE), String(seq))
}

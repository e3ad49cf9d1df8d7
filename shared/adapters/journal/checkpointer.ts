import { faultPoint } from '../../fault-points.js'
import type { MemoryHotState } from '../memory/memory-hot-state.js'
import type { DedupeStore } from './dedupe-store.js'
import type { JournalQueue } from './journal-queue.js'

export interface CheckpointerOptions {
  queue: JournalQueue
  hot: MemoryHotState
  dedupe: DedupeStore
  /**
   * Makes what the archive has acknowledged survive a machine crash (the embedded
   * dynalite does not sync its writes); unset when its acknowledgements are durable.
   */
  syncArchive?: (() => Promise<void>) | undefined
  /** Least time between two checkpoints. Default 5 s. */
  everyMs?: number
  now?: () => number
}

/** Counters for metrics. */
export interface CheckpointStats {
  checkpoints: number
  /** Sequence of the last checkpoint. */
  seq: number
}

/**
 * Moves the embedded journal's checkpoint to its low-water mark: the highest sequence up to
 * which every batch is durable without the journal. That takes two things per batch:
 * its effect on every bucket it changed is in the archive (the memory hot state knows
 * which dirty buckets still wait for a write, and since which batch), and the ids it
 * recorded for dedupe are in the {@link DedupeStore}. Runs after write-behind flushes.
 */
export class JournalCheckpointer {
  readonly #options: CheckpointerOptions
  readonly #everyMs: number
  readonly #now: () => number
  readonly #stats: CheckpointStats = { checkpoints: 0, seq: 0 }
  #lastAt = -Infinity

  constructor (options: CheckpointerOptions) {
    this.#options = options
    this.#everyMs = options.everyMs ?? 5000
    this.#now = options.now ?? Date.now
    this.#stats.seq = options.queue.stats.checkpointSeq
  }

  get stats (): Readonly<CheckpointStats> {
    return { ...this.#stats }
  }

  /** Checkpoints when due (`force`: at once, e.g. after the last flush on shutdown). */
  async run (force = false): Promise<void> {
    const { queue, hot, dedupe, syncArchive } = this.#options
    const now = this.#now()
    if (!force && now - this.#lastAt < this.#everyMs) return
    const through = hot.durableThrough(queue.foldedSeq)
    if (through <= queue.stats.checkpointSeq) return
    this.#lastAt = now
    // The window this is about: the archive holds every batch up to `through`, nothing
    // about it is saved yet; a crash here replays those batches.
    await faultPoint('journal.checkpoint')
    await syncArchive?.()
    await dedupe.save(hot.unsavedSeen(through))
    hot.savedSeen(through)
    await queue.checkpoint(through)
    this.#stats.checkpoints++
    this.#stats.seq = through
    await dedupe.sweep(now)
  }
}

import type { StreamEvent } from './stream-event.js'

/**
 * The pending updates of one connection: at most one state per bucket, the newest (by
 * `rev`). A late change to a past bucket and a change of the current bucket are different
 * buckets, so two entries. However fast updates arrive, a connection that cannot keep up
 * holds one entry per bucket it watches that changed — never a queue.
 */
export class Mailbox {
  readonly #pending = new Map<string, StreamEvent>()

  get size (): number {
    return this.#pending.size
  }

  /** Keeps `event` unless a newer state of the same bucket is already pending. */
  put (event: StreamEvent): void {
    const current = this.#pending.get(event.key)
    if (current === undefined || event.supersedes(current)) this.#pending.set(event.key, event)
  }

  /**
   * Removes and returns pending events in stream-time order (so event ids rise within a
   * flush), at most `limit` of them; the later ones stay pending.
   */
  take (limit = Infinity): StreamEvent[] {
    const events = [...this.#pending.values()].sort((a, b) => a.time - b.time)
    const taken = events.length > limit ? events.slice(0, limit) : events
    for (const event of taken) this.#pending.delete(event.key)
    return taken
  }

  /** Drops pending states of buckets matching `predicate` (after an unsubscribe). */
  drop (predicate: (event: StreamEvent) => boolean): void {
    for (const [key, event] of this.#pending) if (predicate(event)) this.#pending.delete(key)
  }

  clear (): void {
    this.#pending.clear()
  }
}

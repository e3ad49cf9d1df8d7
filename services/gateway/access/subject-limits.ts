/*
 * Stream limits per key on one gateway: how many streams one JWT subject (or one client
 * IP) may hold open, and how many series it may watch over all of them. Per-IP limits
 * cannot tell the users behind one proxy apart, nor stop one user spread over many
 * addresses; per-subject limits do both, per-IP ones also cover tokenless clients.
 */

/** Something that watches series: a stream's connection. */
export interface Watcher {
  readonly subscriptions: ReadonlySet<unknown>
}

/** Counts each key's (subject's or IP's) open streams and watched series against the configured limits (0: none). */
export class SubjectLimits {
  readonly #streams = new Map<string, Set<Watcher>>()

  constructor (readonly maxConnections: number, readonly maxSubscriptions: number) {}

  /** Whether `subject` may open one more stream. */
  mayOpen (subject: string | undefined): boolean {
    if (subject === undefined || this.maxConnections === 0) return true
    return (this.#streams.get(subject)?.size ?? 0) < this.maxConnections
  }

  /** Counts an open stream of `subject`; the returned function forgets it (idempotent). */
  opened (subject: string | undefined, watcher: Watcher): () => void {
    if (subject === undefined) return () => {}
    let streams = this.#streams.get(subject)
    if (streams === undefined) this.#streams.set(subject, streams = new Set())
    streams.add(watcher)
    return () => {
      const current = this.#streams.get(subject)
      if (current === undefined) return
      current.delete(watcher)
      if (current.size === 0) this.#streams.delete(subject)
    }
  }

  /** Series `subject` watches now over all its streams. */
  watching (subject: string): number {
    let total = 0
    for (const watcher of this.#streams.get(subject) ?? []) total += watcher.subscriptions.size
    return total
  }

  /** Whether `subject` may add `more` watched series. */
  mayWatch (subject: string | undefined, more: number): boolean {
    if (subject === undefined || this.maxSubscriptions === 0 || more === 0) return true
    return this.watching(subject) + more <= this.maxSubscriptions
  }

  /** Open streams of `subject` (for tests and metrics). */
  streams (subject: string): number {
    return this.#streams.get(subject)?.size ?? 0
  }
}

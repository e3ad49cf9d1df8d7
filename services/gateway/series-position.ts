/*
 * What a gateway may promise about one series: its position, the rev up to which every
 * state of the series has passed through the gateway's series cache (and on to its
 * watchers). Clients resume from positions (streaming/resume.ts), so a position must never
 * promise a state the gateway has not seen.
 *
 * Two things vouch for a position. An atomic read of the series made after its bus
 * subscription was active holds every state up to its newest rev. After such a read, a bus
 * event vouches for `rev − 1`: a series channel carries its states in position order (the
 * fold publishes them atomically with its change), so every earlier state has arrived —
 * though other states at that same rev may still be on their way; the last state a fold
 * publishes on the channel says no more are (`lastAtRev`) and vouches for its rev. A bus
 * connection that may have lost messages stops events from vouching until the resync read
 * after it.
 */

/** A series' position, as the gateway's series cache vouches for it. */
export class SeriesPosition {
  #value = 0
  #vouched = false
  #doubted = false

  /** Every state of the series with a rev up to this has passed through; 0 until the first read; it only rises. */
  get value (): number {
    return this.#value
  }

  /** Whether a read of the series has vouched for a position since its subscription started. */
  get vouched (): boolean {
    return this.#vouched
  }

  /** An atomic read of the series, made after its subscription was active, returned these states. */
  read (states: ReadonlyArray<{ rev: number }>): void {
    for (const state of states) this.#value = Math.max(this.#value, state.rev)
    this.#vouched = true
  }

  /** A bus event with a state of this rev arrived; `lastAtRev`: the last state of its fold in this series. */
  heard (rev: number, lastAtRev = false): void {
    if (this.#vouched && !this.#doubted) this.#value = Math.max(this.#value, lastAtRev ? rev : rev - 1)
  }

  /** The bus may be losing messages: events vouch for nothing until {@link resynced}. */
  doubt (): void {
    this.#doubted = true
  }

  /** The resync read that follows a restored bus subscription: events vouch again. */
  resynced (): void {
    this.#doubted = false
  }
}

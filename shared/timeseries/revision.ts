/**
 * Positions: how Pulse orders the states of a bucket. No imports, so the browser bundle
 * takes this module as it is.
 *
 * A bucket's `rev` is its position, `term × 2^32 + count`:
 *
 * - `count` goes up by one with every fold that changes any bucket of the ticker, and every
 *   bucket the fold changed takes the new count. So the positions of one series only grow,
 *   and a later state of any bucket has a higher position than every earlier state.
 * - `term` is allocated from the archive (an atomic counter, see `Archive.nextTerm`)
 *   whenever the hot state of a ticker may have lost or rolled back writes: a Redis that
 *   restarted, a replica promoted after a failover (a new Redis `run_id`), an embedded
 *   process that started again. Every position of a new term is above every position the
 *   lost state could have issued, published or archived, whatever the clocks say.
 *
 * Revs stay exact integers in JSON, Lua and DynamoDB: terms below 2^25, counts below 2^28 (a
 * hot state asks for a new term before a ticker's count would reach it). See
 * docs/decisions/0010-positions.md.
 */

/** The span of counts in one term. */
export const TERM_SPAN = 2 ** 28

/** Terms stay below this, so every position is a safe integer. */
export const TERM_LIMIT = 2 ** 25

/** The position of the `count`-th change of a ticker in `term`. */
export function position (term: number, count: number): number {
  return term * TERM_SPAN + count
}

/** The term a position (a bucket's `rev`) belongs to. */
export function termOf (rev: number): number {
  return Math.floor(rev / TERM_SPAN)
}

/** What orders the states of one bucket: its position and, on the wire, whether it is complete. */
export interface Revision {
  rev: number
  is_partial?: boolean
}

/**
 * The one rule that orders two states of the same bucket, used by the archive's
 * conditional write (as a condition expression with the same meaning), the gateway's series
 * cache, the connection's held states, the client SDK and the dashboard: the higher `rev` is
 * newer; at equal `rev` a complete copy (`is_partial: false`) is newer than a partial one,
 * because a bucket's completion is sent with the position of its last change.
 * True when `candidate` is a newer state than `held` (or nothing is held).
 */
export function isNewerState (candidate: Revision, held: Revision | undefined): boolean {
  if (held === undefined) return true
  if (candidate.rev !== held.rev) return candidate.rev > held.rev
  return held.is_partial === true && candidate.is_partial === false
}

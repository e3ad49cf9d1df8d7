import { MESSAGE_BURST, MESSAGES_PER_SECOND } from '../../../shared/stream-limits.js'

export interface FloodGuardOptions {
  /** Messages allowed in a burst. */
  burst?: number
  /** Sustained messages per second. */
  perSecond?: number
  /** Messages dropped (over the rate) within `dropWindowMs` before the client is disconnected. */
  maxDropped?: number
  /** The window `maxDropped` counts over; older drops are forgotten. */
  dropWindowMs?: number
}

/** What to do with one incoming client message. */
export type FloodVerdict = 'accept' | 'drop' | 'drop-and-warn' | 'disconnect'

/**
 * A token bucket per connection. Over the rate, messages are dropped (the first of each
 * second with a warning to the client); a client that keeps flooding is disconnected.
 *
 * Drops are counted as a rate, not a total: the count leaks away at `maxDropped` per
 * `dropWindowMs`, so only more than `maxDropped` drops within about one window (a real
 * flood) disconnect, and a long-lived client that overruns its allowance now and then is
 * only throttled.
 */
export class FloodGuard {
  readonly #burst: number
  readonly #perMs: number
  readonly #maxDropped: number
  readonly #dropLeakPerMs: number
  #tokens: number
  #refilledAt: number
  #dropped = 0
  #droppedAt: number
  #warnedAt = -Infinity

  constructor (now: number, options: FloodGuardOptions = {}) {
    this.#burst = options.burst ?? MESSAGE_BURST
    this.#perMs = (options.perSecond ?? MESSAGES_PER_SECOND) / 1000
    this.#maxDropped = options.maxDropped ?? 100
    this.#dropLeakPerMs = this.#maxDropped / (options.dropWindowMs ?? 10_000)
    this.#tokens = this.#burst
    this.#refilledAt = now
    this.#droppedAt = now
  }

  check (now: number): FloodVerdict {
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#refilledAt) * this.#perMs)
    this.#refilledAt = now
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      return 'accept'
    }
    this.#dropped = Math.max(0, this.#dropped - (now - this.#droppedAt) * this.#dropLeakPerMs) + 1
    this.#droppedAt = now
    if (this.#dropped > this.#maxDropped) return 'disconnect'
    if (now - this.#warnedAt >= 1000) {
      this.#warnedAt = now
      return 'drop-and-warn'
    }
    return 'drop'
  }
}

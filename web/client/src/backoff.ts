/** Reconnection delays: full-jitter exponential backoff. */
export interface BackoffOptions {
  /** First ceiling, milliseconds (500). */
  baseMs?: number
  /** Largest ceiling, milliseconds (20 000). */
  capMs?: number
  random?: () => number
}

/**
 * Full jitter (a uniform delay between 0 and `min(cap, base · 2^attempt)`) spreads a crowd
 * of clients that lost the same gateway, so they do not return in one wave.
 */
export class Backoff {
  #attempt = 0
  readonly #base: number
  readonly #cap: number
  readonly #random: () => number

  constructor (options: BackoffOptions = {}) {
    this.#base = options.baseMs ?? 500
    this.#cap = options.capMs ?? 20_000
    this.#random = options.random ?? Math.random
  }

  /** The delay before the next attempt; each call widens the window. */
  next (): number {
    const ceiling = Math.min(this.#cap, this.#base * 2 ** this.#attempt)
    this.#attempt = Math.min(this.#attempt + 1, 30)
    return Math.round(this.#random() * ceiling)
  }

  /** After a successful connection. */
  reset (): void {
    this.#attempt = 0
  }
}

/** Reconnection delays: full-jitter exponential backoff. */
export interface BackoffOptions {
  /** First ceiling, milliseconds. */
  baseMs?: number
  /** Largest ceiling, milliseconds. */
  capMs?: number
  random?: () => number
}

/**
 * Full jitter (a uniform delay between 0 and `min(cap, base · 2^attempt)`) spreads a crowd
 * of clients that lost the same gateway, so they do not return in one wave.
 */
export class Backoff {
  private attempt = 0
  private readonly baseMs: number
  private readonly capMs: number
  private readonly random: () => number

  constructor (options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 500
    this.capMs = options.capMs ?? 20_000
    this.random = options.random ?? Math.random
  }

  /** The delay before the next attempt; each call widens the window. */
  next (): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** this.attempt)
    this.attempt = Math.min(this.attempt + 1, 30)
    return Math.round(this.random() * ceiling)
  }

  /** Called after a successful connection. */
  reset (): void {
    this.attempt = 0
  }

  get attempts (): number {
    return this.attempt
  }
}

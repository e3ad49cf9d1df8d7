/** Largest WebSocket message a client may send; larger ones close the socket with 1009. */
export const MAX_MESSAGE_BYTES = 16 * 1024

/** Most `ticker#resolution` subscriptions one client may hold. */
export const MAX_SUBSCRIPTIONS = 200

/** Seconds a client refused at the connection limit is told to wait (`Retry-After`). */
export const RETRY_AFTER_SECONDS = 5

/** WebSocket close codes the gateway uses. */
export const CloseCode = {
  /** RFC 6455: the message was too big to process. */
  tooLarge: 1009,
  /** RFC 6455: policy violation — the client flooded the gateway with messages. */
  flood: 1008,
  /** IANA: service restart — reconnect (and resume) now. */
  restart: 1012,
  /** IANA: try again later — the client stopped reading and fell too far behind. */
  stalled: 1013
} as const

/** Why the gateway ends a connection; each maps to a close code and a reconnect hint. */
export type CloseReason = 'restart' | 'stalled' | 'flood'

/**
 * Counts open streams (WebSocket and SSE together) against `MAX_CONNECTIONS`. A slot is
 * taken before the upgrade or the SSE response starts and given back when the socket closes.
 */
export class ConnectionLimiter {
  #count = 0

  constructor (readonly max: number) {}

  get count (): number {
    return this.#count
  }

  /** Takes a slot; false at the limit. The returned release is idempotent. */
  tryAcquire (): (() => void) | undefined {
    if (this.#count >= this.max) return undefined
    this.#count++
    let released = false
    return () => {
      if (released) return
      released = true
      this.#count--
    }
  }
}

export interface FloodGuardOptions {
  /** Messages allowed in a burst. */
  burst?: number
  /** Sustained messages per second. */
  perSecond?: number
  /** Messages dropped (over the rate) before the client is disconnected. */
  maxDropped?: number
}

/** What to do with one incoming client message. */
export type FloodVerdict = 'accept' | 'drop' | 'drop-and-warn' | 'disconnect'

/**
 * A token bucket per connection. Over the rate, messages are dropped (the first of each
 * second with a warning to the client); a client that keeps flooding is disconnected.
 */
export class FloodGuard {
  readonly #burst: number
  readonly #perMs: number
  readonly #maxDropped: number
  #tokens: number
  #refilledAt: number
  #dropped = 0
  #warnedAt = -Infinity

  constructor (now: number, options: FloodGuardOptions = {}) {
    this.#burst = options.burst ?? 50
    this.#perMs = (options.perSecond ?? 25) / 1000
    this.#maxDropped = options.maxDropped ?? 100
    this.#tokens = this.#burst
    this.#refilledAt = now
  }

  check (now: number): FloodVerdict {
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#refilledAt) * this.#perMs)
    this.#refilledAt = now
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      return 'accept'
    }
    this.#dropped++
    if (this.#dropped > this.#maxDropped) return 'disconnect'
    if (now - this.#warnedAt >= 1000) {
      this.#warnedAt = now
      return 'drop-and-warn'
    }
    return 'drop'
  }
}

/** How urgent a request is: the selected ticker's history goes before the list's overview. */
export type Priority = 'high' | 'low'

export interface RequestThrottleOptions {
  /** The server's per-IP read limit per minute until a response says otherwise (`x-ratelimit-limit`). */
  limitPerMinute?: number
  /** Share of that limit this page may spend, leaving the rest to other tabs behind the same IP. */
  share?: number
  /** Requests in flight at once; low-priority ones use all but one slot. */
  concurrency?: number
  now?: () => number
}

interface Waiting {
  priority: Priority
  /** Checked just before sending: a request nobody wants any more is dropped unsent. */
  wanted: () => boolean
  run: () => Promise<unknown>
  resolve: (answer: unknown) => void
  reject: (err: unknown) => void
}

/**
 * Keeps the page's history requests under the gateway's per-IP read limit (`RATE_LIMIT_READ`,
 * 6000 a minute by default): a token bucket refilled at `share` of the limit the server
 * announces in `x-ratelimit-limit`, a few requests in flight at once, high priority first,
 * and a pause until `Retry-After` (or `x-ratelimit-reset` when the budget runs low) so a
 * page never keeps knocking on a closed door.
 */
export class RequestThrottle {
  private limitPerMinute: number
  private readonly share: number
  private readonly concurrency: number
  private readonly now: () => number
  private tokens: number
  private refilledAt: number
  private pausedUntil = 0
  private inFlight = 0
  private lowInFlight = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly queue: Waiting[] = []
  /** Requests sent, for tests and the metrics object. */
  sent = 0

  constructor (options: RequestThrottleOptions = {}) {
    this.limitPerMinute = options.limitPerMinute ?? 6000
    this.share = options.share ?? 0.5
    this.concurrency = options.concurrency ?? 4
    this.now = options.now ?? Date.now
    this.tokens = this.capacity
    this.refilledAt = this.now()
  }

  /** Ten seconds' worth of budget: bursts stay small against a one-minute window. */
  private get capacity (): number {
    return Math.max(1, (this.limitPerMinute * this.share) / 6)
  }

  private get perMs (): number {
    return (this.limitPerMinute * this.share) / 60_000
  }

  /**
   * Runs `run` when the budget allows; resolves `undefined` when `wanted()` turned false
   * while the request waited (it was never sent). A `Response` it returns is observed;
   * other requests have theirs observed by whoever fetched them ({@link observe}).
   */
  async request<T> (priority: Priority, run: () => Promise<T>, wanted: () => boolean = () => true): Promise<T | undefined> {
    return await new Promise<T | undefined>((resolve, reject) => {
      const entry: Waiting = { priority, wanted, run, resolve: resolve as (answer: unknown) => void, reject }
      // High priority jumps every low-priority request still waiting.
      const at = priority === 'high' ? this.queue.findIndex((w) => w.priority === 'low') : -1
      if (at < 0) this.queue.push(entry)
      else this.queue.splice(at, 0, entry)
      this.pump()
    })
  }

  /** Drops every waiting request unsent (each resolves `undefined`) and stops the wake-up timer. */
  clear (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    for (const entry of this.queue.splice(0)) entry.resolve(undefined)
  }

  /** Waiting requests (for tests and metrics). */
  get waiting (): number {
    return this.queue.length
  }

  private refill (now: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.refilledAt) * this.perMs)
    this.refilledAt = now
  }

  private pump (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    for (;;) {
      if (this.inFlight >= this.concurrency || this.queue.length === 0) return
      const now = this.now()
      if (now < this.pausedUntil) {
        this.wake(this.pausedUntil - now)
        return
      }
      this.refill(now)
      const next = this.queue[0] as Waiting
      if (!next.wanted()) {
        this.queue.shift()
        next.resolve(undefined)
        continue
      }
      // One slot stays free for high priority, so a click never waits behind slow overview reads.
      if (next.priority === 'low' && this.concurrency > 1 && this.lowInFlight >= this.concurrency - 1) return
      if (this.tokens < 1) {
        this.wake(Math.ceil((1 - this.tokens) / this.perMs))
        return
      }
      this.queue.shift()
      this.tokens -= 1
      const low = next.priority === 'low'
      this.inFlight++
      if (low) this.lowInFlight++
      this.sent++
      next.run().then((answer) => {
        if (answer instanceof Response) this.observe(answer)
        next.resolve(answer)
      }, next.reject).finally(() => {
        this.inFlight--
        if (low) this.lowInFlight--
        this.pump()
      })
    }
  }

  private wake (ms: number): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined
      this.pump()
    }, Math.max(10, ms))
  }

  /** Learns the server's limit from a response and backs off when told to. */
  observe (res: Response): void {
    const limit = Number(res.headers.get('x-ratelimit-limit'))
    if (Number.isFinite(limit) && limit > 0 && limit !== this.limitPerMinute) {
      this.limitPerMinute = limit
      this.tokens = Math.min(this.tokens, this.capacity)
    }
    const now = this.now()
    if (res.status === 429) {
      const seconds = Number(res.headers.get('retry-after') ?? res.headers.get('x-ratelimit-reset') ?? 5)
      this.pausedUntil = Math.max(this.pausedUntil, now + (Number.isFinite(seconds) ? seconds : 5) * 1000)
      return
    }
    const remaining = Number(res.headers.get('x-ratelimit-remaining'))
    const reset = Number(res.headers.get('x-ratelimit-reset'))
    // Other tabs (or users behind one NAT) spent the window: wait for it to turn over.
    if (res.headers.has('x-ratelimit-remaining') && Number.isFinite(remaining) && Number.isFinite(reset) && remaining < this.limitPerMinute * 0.02) {
      this.pausedUntil = Math.max(this.pausedUntil, now + reset * 1000)
    }
  }
}

/** Due times are rounded up to this, so wake-ups due at nearly the same moment share one timer run. */
const SCHEDULER_GRANULARITY_MS = 2

/** Something the scheduler wakes: a channel with trailing sends, a backpressured connection. */
export interface Due {
  runDue: (now: number) => void
}

/**
 * The gateway-wide timer of delayed work: one timer for every channel and connection
 * instead of one each. Wake-ups due at nearly the same moment share one run, so the
 * trailing sends of channels that became due together leave in the same tick (and, corked,
 * in one write per socket).
 */
export class FlushScheduler {
  readonly #now: () => number
  readonly #due = new Map<number, Due[]>()
  #timer: NodeJS.Timeout | undefined
  #timerAt = Infinity

  constructor (now: () => number) {
    this.#now = now
  }

  /** Calls `target.runDue()` at `at` or soon after. */
  schedule (target: Due, at: number): void {
    const slot = Math.ceil(at / SCHEDULER_GRANULARITY_MS) * SCHEDULER_GRANULARITY_MS
    const list = this.#due.get(slot)
    if (list === undefined) this.#due.set(slot, [target])
    else list.push(target)
    if (slot < this.#timerAt) this.#arm(slot)
  }

  /** Stops the timer; pending wake-ups are dropped (at shutdown). */
  stop (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = Infinity
    this.#due.clear()
  }

  #arm (slot: number): void {
    clearTimeout(this.#timer)
    this.#timerAt = slot
    this.#timer = setTimeout(() => this.#run(), Math.max(0, slot - this.#now()))
    this.#timer.unref()
  }

  #run (): void {
    this.#timer = undefined
    this.#timerAt = Infinity
    const now = this.#now()
    const ready: number[] = []
    for (const slot of this.#due.keys()) if (slot <= now) ready.push(slot)
    ready.sort((a, b) => a - b)
    for (const slot of ready) {
      const targets = this.#due.get(slot) ?? []
      this.#due.delete(slot)
      for (const target of targets) target.runDue(now)
    }
    let next = Infinity
    for (const slot of this.#due.keys()) next = Math.min(next, slot)
    if (next !== Infinity && next < this.#timerAt) this.#arm(next)
  }
}

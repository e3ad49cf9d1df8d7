/*
 * The message budget: a gateway closes a WebSocket that sends more than its limit of
 * messages per second (a token bucket, shared/stream-limits.ts). The outbox paces what the
 * SDK sends to stay a share inside that budget, queueing the rest in order.
 */
import { MESSAGE_BURST, MESSAGES_PER_SECOND } from '../../../shared/stream-limits.js'
import type { ClientMessage } from './types.js'

/** The SDK stays this far inside the gateway's message budget. */
const BUDGET_SHARE = 0.8

/**
 * Sends messages within a share of the gateway's message budget: a burst at once, then at
 * the refill rate; what does not fit waits, in order, for the budget to refill.
 */
export class Outbox {
  #queue: string[] = []
  #budget = MESSAGE_BURST * BUDGET_SHARE
  #refilledAt = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  readonly #deliver: (text: string) => void

  /** @param deliver puts a message on the current connection */
  constructor (deliver: (text: string) => void) {
    this.#deliver = deliver
  }

  /** Sends `message` now if the budget allows, else once it does. */
  send (message: ClientMessage): void {
    this.#queue.push(JSON.stringify(message))
    this.#pump()
  }

  /** A new connection: the whole burst is available again and nothing is queued. */
  restart (): void {
    this.clear()
    this.#budget = MESSAGE_BURST * BUDGET_SHARE
    this.#refilledAt = Date.now()
  }

  /** The connection is gone: what is queued is dropped. */
  clear (): void {
    clearTimeout(this.#timer)
    this.#queue = []
  }

  #pump (): void {
    const perMs = MESSAGES_PER_SECOND * BUDGET_SHARE / 1000
    const now = Date.now()
    this.#budget = Math.min(MESSAGE_BURST * BUDGET_SHARE, this.#budget + (now - this.#refilledAt) * perMs)
    this.#refilledAt = now
    while (this.#budget >= 1 && this.#queue.length > 0) {
      this.#deliver(this.#queue.shift() as string)
      this.#budget--
    }
    clearTimeout(this.#timer)
    if (this.#queue.length > 0) this.#timer = setTimeout(() => this.#pump(), Math.ceil((1 - this.#budget) / perMs))
  }
}

import type { ConnectionActor } from './connection-actor.js'

/**
 * The gateway-wide budget of bytes buffered in user space (`MAX_BUFFERED_MB`): each
 * connection reports its buffered bytes when they change, and when the sum goes over the
 * budget the connections holding the most are cut.
 */
export class BufferBudget {
  readonly #maxBytes: number
  /** Sum of the buffered bytes each connection last reported; an upper bound between reports. */
  #estimate = 0
  readonly #reported = new WeakMap<ConnectionActor, number>()

  constructor (maxBytes: number) {
    this.#maxBytes = maxBytes
  }

  /** `connection` now buffers `bytes`; over the budget, {@link enforce} runs on `connections`. */
  note (connection: ConnectionActor, bytes: number, connections: Iterable<ConnectionActor>): void {
    this.#estimate += bytes - (this.#reported.get(connection) ?? 0)
    if (bytes === 0) this.#reported.delete(connection)
    else this.#reported.set(connection, bytes)
    if (this.#estimate > this.#maxBytes) this.enforce(connections)
  }

  /** A connection ended: its bytes no longer count. */
  forget (connection: ConnectionActor): void {
    this.#estimate -= this.#reported.get(connection) ?? 0
    this.#reported.delete(connection)
  }

  /**
   * Keeps the bytes buffered by all connections under the budget. The running estimate
   * only grows between reports (a socket that drained does not say so), so it is first
   * recounted; if the true total is over the budget, the connections holding the most are
   * cut with the stalled code (they reconnect and resume) until it is under.
   */
  enforce (connections: Iterable<ConnectionActor>): void {
    let total = 0
    const holders: Array<{ connection: ConnectionActor, bytes: number }> = []
    for (const connection of connections) {
      const bytes = connection.bufferedAmount
      if (bytes === 0) {
        this.#reported.delete(connection)
        continue
      }
      this.#reported.set(connection, bytes)
      total += bytes
      holders.push({ connection, bytes })
    }
    this.#estimate = total
    if (total <= this.#maxBytes) return
    holders.sort((a, b) => b.bytes - a.bytes)
    for (const { connection, bytes } of holders) {
      if (total <= this.#maxBytes) break
      total -= bytes
      connection.close('stalled')
    }
  }
}

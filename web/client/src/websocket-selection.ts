/*
 * The watched series on a WebSocket: which series the gateway holds for this connection,
 * the subscribe and unsubscribe messages that bring it in line with what is watched (the
 * difference only, grouped into few messages), and the requests awaiting their reply.
 */
import type { ResumePositions } from './resume.js'
import type { Series } from './series.js'
import { groupSeries, keysOf } from './transport.js'
import type { ClientMessage } from './types.js'

/** A subscribe or unsubscribe message awaiting its reply: the series it asked for, and whether it resumed them. */
export interface PendingReply {
  keys: string[]
  resumed: boolean
}

/**
 * What one WebSocket connection asked the gateway to hold, and the replies it awaits.
 * The gateway answers subscribe and unsubscribe in order, snapshots by request id.
 */
export class WebSocketSelection {
  /** Series the gateway holds for this WebSocket, or was asked to. */
  #asked = new Set<string>()
  /** Subscribe and unsubscribe messages awaiting their reply, in order (the gateway answers in order). */
  #replies: PendingReply[] = []
  /** Snapshot requests in flight: request id → series. */
  readonly #snapshots = new Map<string, string>()
  #requests = 0

  /** A new connection: the gateway holds nothing and owes no reply. */
  restart (): void {
    this.#asked = new Set()
    this.#replies = []
    this.#snapshots.clear()
  }

  /**
   * Sends what brings the gateway in line with `watched`: unsubscribes first (so its count
   * stays under the limit at every step), then subscribes, those resuming from their
   * positions apart from those read afresh (whose live states wait for their snapshot).
   */
  sync (watched: ReadonlyMap<string, Series>, resume: ResumePositions, send: (message: ClientMessage) => void): void {
    const drop = [...this.#asked].filter((key) => !watched.has(key))
    const add = [...watched.keys()].filter((key) => !this.#asked.has(key))
    for (const group of groupSeries(drop)) {
      send({ op: 'unsubscribe', tickers: group.tickers, resolutions: group.resolutions })
      this.#replies.push({ keys: [], resumed: false })
    }
    for (const resumed of [true, false]) {
      for (const group of groupSeries(add.filter((key) => resume.has(key) === resumed))) {
        const keys = keysOf(group)
        for (const key of keys) if (!resumed && (watched.get(key)?.window ?? 0) > 0) watched.get(key)?.await()
        send({ op: 'subscribe', tickers: group.tickers, resolutions: group.resolutions, ...(resumed ? resume.subscribeFields(keys) : {}) })
        this.#replies.push({ keys, resumed })
      }
    }
    this.#asked = new Set(watched.keys())
  }

  /** The oldest subscribe or unsubscribe still awaiting its reply, which has now come. */
  nextReply (): PendingReply | undefined {
    return this.#replies.shift()
  }

  /** A new snapshot request of `key`: its request id. */
  snapshotRequest (key: string): string {
    const id = `s${++this.#requests}`
    this.#snapshots.set(id, key)
    return id
  }

  /** The series the snapshot request `id` was for, now answered ('' when unknown). */
  snapshotAnswered (id: string): string {
    const key = this.#snapshots.get(id) ?? ''
    this.#snapshots.delete(id)
    return key
  }

  /** The gateway does not hold `key` (refused, or dropped by a token refresh): nothing to unsubscribe. */
  notHeld (key: string): void {
    this.#asked.delete(key)
  }
}

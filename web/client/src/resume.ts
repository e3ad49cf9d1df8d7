import type { SubscribedEvent } from './types.js'

/**
 * Where each series was left, and what to ask a gateway for to carry on from there. The
 * rest of the SDK treats positions as opaque: it reports what arrived and asks for the
 * resume parameters of a set of series, so a change of the resume protocol changes this
 * module only.
 *
 * The protocol: a series' position is a number (as a decimal string) up to which the
 * client holds every state of the series. Each WebSocket bucket event's `id` is the
 * position the client holds once it has the event, and each snapshot says the position it
 * was read at; so a series' position is the last one received (a later event may promise
 * less than an earlier one, never more than is true). A WebSocket `subscribe` hands the
 * positions back per series (`positions`); the gateway replays exactly the states after
 * each, or lists the series in `not_recovered`, which then take a fresh snapshot that
 * replaces what is held. On an event stream each event's `id` is the resume token of the
 * whole stream instead: `1.` then, for each ticker of the stream in sorted order, the
 * lowest position of its series in base 36 (empty when unknown). The client reads its
 * series' positions out of it and writes one for the stream it opens next.
 */
export class ResumePositions {
  readonly #at = new Map<string, number>()

  /** A WebSocket bucket event of `series` arrived with this id. */
  event (series: string, id: string | undefined): void {
    const position = parsePosition(id)
    if (position !== undefined) this.#at.set(series, position)
  }

  /** An event-stream bucket event of `series` arrived with this id (the stream's token), on a stream of `tickers`. */
  streamEvent (series: string, id: string | undefined, tickers: readonly string[]): void {
    const ticker = series.slice(0, series.indexOf('#'))
    const position = readToken(id, tickers).get(ticker)
    if (position !== undefined) this.#at.set(series, position)
  }

  /** A snapshot of `series`, read at `position`, was handed out. */
  snapshot (series: string, position: string | undefined): void {
    const at = parsePosition(position)
    if (at === undefined) this.#at.delete(series)
    else this.#at.set(series, at)
  }

  /** Whether `series` can be resumed rather than read afresh. */
  has (series: string): boolean {
    return this.#at.has(series)
  }

  /** The series is no longer watched, or what is held of it is replaced. */
  forget (series: string): void {
    this.#at.delete(series)
  }

  /** Fields of a WebSocket `subscribe` resuming every one of `series` (which all have positions). */
  subscribeFields (series: readonly string[]): { positions?: Record<string, string> } {
    const positions: Record<string, string> = {}
    for (const key of series) {
      const at = this.#at.get(key)
      if (at !== undefined) positions[key] = String(at)
    }
    return Object.keys(positions).length === 0 ? {} : { positions }
  }

  /** Request headers of an event stream of `series` resuming those that have positions. */
  streamHeaders (series: readonly string[]): Record<string, string> {
    const lowest = new Map<string, number>()
    for (const key of series) {
      const ticker = key.slice(0, key.indexOf('#'))
      const at = this.#at.get(key) ?? 0
      lowest.set(ticker, Math.min(lowest.get(ticker) ?? Infinity, at))
    }
    if (![...lowest.values()].some((at) => at > 0)) return {}
    const parts = [...lowest.keys()].sort().map((ticker) => {
      const at = lowest.get(ticker) ?? 0
      return at > 0 ? at.toString(36) : ''
    })
    return { 'last-event-id': `1.${parts.join('.')}` }
  }

  /** Whether the gateway's reply to a resuming `subscribe` says it recovered `series`. */
  recovered (reply: SubscribedEvent, series: string): boolean {
    return reply.replayed !== undefined && reply.not_recovered?.includes(series) !== true
  }
}

function parsePosition (text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,16}$/.test(text)) return undefined
  const position = Number(text)
  return Number.isSafeInteger(position) && position > 0 ? position : undefined
}

/** The per-ticker positions of an event stream's token, for a stream of `tickers`. */
function readToken (text: string | undefined, tickers: readonly string[]): Map<string, number> {
  const positions = new Map<string, number>()
  const parts = text?.split('.') ?? []
  const sorted = [...new Set(tickers)].sort()
  if (parts[0] !== '1' || parts.length !== sorted.length + 1) return positions
  sorted.forEach((ticker, i) => {
    const part = parts[i + 1] as string
    const position = /^[0-9a-z]{1,11}$/.test(part) ? parseInt(part, 36) : NaN
    if (Number.isSafeInteger(position) && position > 0) positions.set(ticker, position)
  })
  return positions
}

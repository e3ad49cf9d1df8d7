import { parseSeriesKey, type SeriesKey } from '../../../shared/timeseries/keys.js'
import { termOf } from '../../../shared/timeseries/revision.js'
import type { SeriesCache } from '../series-cache.js'
import { StreamEvent } from './protocol.js'

/*
 * Series positions on the wire, and resuming from them.
 *
 * A bucket state's rev is its position in its ticker's history (shared/timeseries/
 * revision.ts): it never repeats or goes backwards, whatever the clocks say. A client's
 * position in a series is a rev up to which it holds every state of the series: each
 * bucket event carries the position the client holds once it has that event (its `id`),
 * and each snapshot the position it was read at. On a reconnect, to any gateway, the
 * client hands its positions back; for each series the gateway either replays exactly the
 * bucket states above that position, or says the series was not recovered (the client's
 * position belongs to a history the hot state no longer has — a Redis failover rolled it
 * back — or is unknown) and the client replaces what it holds with a fresh snapshot.
 *
 * Whoever sends events may only lower their positions: the series cache sets them (every
 * state up to there has passed through it), a channel lowers them below a state it holds
 * back for its debounce, and a connection below a state it holds back for backpressure.
 */

/**
 * Lowers the positions of `events`, written to one client in this order, so that each
 * promises only what the client holds once it has that event: below the first waiting
 * state of every later event of its series, and below `waiting(series)` (the first state
 * of the series still held back after the write). `firstRev` says, for each event, the rev
 * of the oldest state it replaced while waiting (its own rev when it replaced none).
 * Events whose position must drop are copied, so shared events stay untouched.
 */
export function vouchInOrder (
  events: readonly StreamEvent[],
  firstRev: (event: StreamEvent) => number,
  waiting: (series: SeriesKey) => number = () => Infinity
): StreamEvent[] {
  const floor = new Map<SeriesKey, number>()
  const out = new Array<StreamEvent>(events.length)
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i] as StreamEvent
    const below = floor.get(event.series) ?? waiting(event.series)
    out[i] = event.position < below ? event : event.withPosition(Math.max(0, below - 1))
    floor.set(event.series, Math.min(below, firstRev(event)))
  }
  return out
}

/** What a resume found: the states to replay, in position order, and the series it could not continue. */
export interface Resumption {
  events: StreamEvent[]
  notRecovered: SeriesKey[]
}

/**
 * Whether a client at `held` can continue from the series' current history: the position
 * is one this history reached (not ahead of it) and of its current term (a new term means
 * the hot state may have lost or rolled back states the client holds).
 */
export function canContinue (held: number, current: number): boolean {
  return held > 0 && held <= current && termOf(held + 1) === termOf(current + 1)
}

/**
 * The resume of `series` from `positions` (missing: not recovered), read from the series
 * cache. Call it after joining the channels, so nothing that changes during the read is
 * missed. A recovered series replays every state above its position; for a series not
 * recovered, `wholeWindow` replays every state the cache holds (an event stream has no
 * snapshots to ask for) or nothing (a WebSocket client asks for its own snapshot).
 */
export async function resume (
  cache: SeriesCache,
  series: readonly SeriesKey[],
  positions: ReadonlyMap<SeriesKey, number>,
  now: number,
  wholeWindow: boolean
): Promise<Resumption> {
  const events: StreamEvent[] = []
  const notRecovered: SeriesKey[] = []
  await Promise.all(series.map(async (key) => {
    const parsed = parseSeriesKey(key)
    if (parsed === undefined) return
    const held = positions.get(key)
    let view = await cache.read(parsed.ticker, parsed.resolution)
    // A client ahead of this gateway came from one whose bus messages arrived first: ask the hot state.
    if (held !== undefined && held > view.position) view = await cache.readCurrent(parsed.ticker, parsed.resolution)
    const recovered = held !== undefined && canContinue(held, view.position)
    if (!recovered) notRecovered.push(key)
    if (!recovered && !wholeWindow) return
    const from = recovered ? held : -1
    for (const bucket of view.buckets) {
      if (bucket.rev > from) events.push(new StreamEvent(bucket, 'resume', now, view.position))
    }
  }))
  events.sort((a, b) => a.bucket.rev - b.bucket.rev)
  return { events: vouchInOrder(events, (event) => event.bucket.rev), notRecovered: notRecovered.sort() }
}

/**
 * The resume token of an event stream, its `id:` and so its `Last-Event-ID`: the position
 * of each ticker of the stream, in the stream's own order of tickers (the lowest over the
 * ticker's resolutions: positions count per ticker, so the lowest is safe for all of
 * them), base 36, dot-separated after a version. A client reconnecting with the same URL
 * resumes every series on any gateway; about 10 bytes per ticker.
 */
export class ResumeToken {
  readonly #tickers: string[]
  readonly #index = new Map<string, number>()
  readonly #series: Map<SeriesKey, number>
  #text: string | undefined

  /** The token of a stream of `series`, starting from `positions` (a resumed stream's). */
  constructor (series: readonly SeriesKey[], positions: ReadonlyMap<SeriesKey, number> = new Map()) {
    this.#tickers = [...new Set(series.map((key) => parseSeriesKey(key)?.ticker ?? ''))].sort()
    this.#tickers.forEach((ticker, i) => this.#index.set(ticker, i))
    this.#series = new Map(series.map((key) => [key, positions.get(key) ?? 0]))
  }

  /** The positions the stream resumes from (those the token it was opened with gave). */
  get positions (): ReadonlyMap<SeriesKey, number> {
    return new Map([...this.#series].filter(([, position]) => position > 0))
  }

  /** A bucket event of `series` with this position was written. */
  advance (series: SeriesKey, position: number): void {
    if (!this.#series.has(series) || this.#series.get(series) === position) return
    this.#series.set(series, position)
    this.#text = undefined
  }

  /** The token now. */
  get text (): string {
    if (this.#text === undefined) {
      const lowest = this.#tickers.map(() => Infinity)
      for (const [key, position] of this.#series) {
        const i = this.#index.get(parseSeriesKey(key)?.ticker ?? '') ?? 0
        lowest[i] = Math.min(lowest[i] as number, position)
      }
      this.#text = `1.${lowest.map((p) => p === Infinity || p === 0 ? '' : p.toString(36)).join('.')}`
    }
    return this.#text
  }

  /** The positions a token gives each of `series` (none when it is not a token of a stream of these tickers). */
  static read (text: string | undefined, series: readonly SeriesKey[]): Map<SeriesKey, number> {
    const positions = new Map<SeriesKey, number>()
    if (text === undefined || text.length > 4096) return positions
    const parts = text.trim().split('.')
    const tickers = [...new Set(series.map((key) => parseSeriesKey(key)?.ticker ?? ''))].sort()
    if (parts[0] !== '1' || parts.length !== tickers.length + 1) return positions
    const byTicker = new Map<string, number>()
    tickers.forEach((ticker, i) => {
      const part = parts[i + 1] as string
      const position = /^[0-9a-z]{1,11}$/.test(part) ? parseInt(part, 36) : NaN
      if (Number.isSafeInteger(position) && position > 0) byTicker.set(ticker, position)
    })
    for (const key of series) {
      const position = byTicker.get(parseSeriesKey(key)?.ticker ?? '')
      if (position !== undefined) positions.set(key, position)
    }
    return positions
  }
}

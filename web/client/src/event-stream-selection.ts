/*
 * The watched series on an event stream (the SSE fallback): a stream fixes its selection
 * in its URL as every listed ticker at every listed resolution, so it carries a product of
 * tickers × resolutions that covers what is watched, up to the gateway's limit, and is
 * reopened when what is watched is no longer covered.
 */
import { MAX_SUBSCRIPTIONS } from '../../../shared/stream-limits.js'
import { keysOf, streamSelection } from './transport.js'

/** The series the current event stream carries, and the URL that selects them. */
export class EventStreamSelection {
  #streamed = new Set<string>()
  #query: URLSearchParams | undefined

  /**
   * Chooses what the next stream carries for the `watched` series; false when nothing is
   * watched (a stream without a selection would carry every ticker, so none is opened).
   */
  choose (watched: readonly string[]): boolean {
    const selection = streamSelection(watched, MAX_SUBSCRIPTIONS)
    if (selection.tickers.length === 0) {
      this.#streamed = new Set()
      this.#query = undefined
      return false
    }
    this.#streamed = new Set(keysOf(selection))
    this.#query = new URLSearchParams({ tickers: selection.tickers.join(','), resolutions: selection.resolutions.join(',') })
    return true
  }

  /** The URL of the stream {@link choose} selected, on the gateway at `base`. */
  url (base: URL): URL {
    const url = new URL('api/v2/stream', base)
    for (const [name, value] of this.#query ?? []) url.searchParams.set(name, value)
    return url
  }

  /** The series the stream carries (some may no longer be watched). */
  get carried (): ReadonlySet<string> {
    return this.#streamed
  }

  /** The stream's tickers, one per series it carries: what its resume token is written over. */
  get tickers (): string[] {
    return [...this.#streamed].map((k) => k.slice(0, k.indexOf('#')))
  }

  /** Whether the stream carries every one of the `watched` series. */
  covers (watched: Iterable<string>): boolean {
    return [...watched].every((key) => this.#streamed.has(key))
  }

  /** The `watched` series the stream does not carry (past the gateway's limit). */
  leftOff (watched: Iterable<string>): string[] {
    return [...watched].filter((key) => !this.#streamed.has(key))
  }
}

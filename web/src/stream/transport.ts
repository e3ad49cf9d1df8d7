import type { BucketEvent } from '../store/model.js'

/** What either transport reports: bucket changes, heartbeats and anything else it got. */
export type StreamMessage =
  | BucketEvent
  | { type: 'heartbeat', id?: string, timestamp?: string, connections?: number }
  | { type: 'subscribed' | 'pong' | 'snapshot', [field: string]: unknown }
  | { type: 'error', code?: string, message?: string }

/** Why a transport ended. */
export interface TransportEnd {
  /** Whether it ever opened: a transport that never opened may be blocked on this network. */
  opened: boolean
  /** The browser refused to create it at all (a policy or an extension). */
  blocked?: boolean
  reason: string
}

/** Callbacks a transport reports to. */
export interface TransportHandlers {
  onOpen: () => void
  onMessage: (message: StreamMessage) => void
  /** Called once, whichever way it ended, but not after `close()`. */
  onEnd: (end: TransportEnd) => void
}

/** What to watch and where to resume. */
export interface Subscription {
  /** `TICKER#resolution` keys, at most the gateway's per-client limit. */
  series: readonly string[]
  /** Id of the last event seen, to resume after it. */
  since: string | undefined
}

/** An open (or opening) connection. */
export interface Transport {
  readonly kind: 'ws' | 'sse'
  /**
   * Changes what the open connection watches. `false` when this transport cannot (SSE
   * fixes its selection in the URL): the caller reconnects with the new subscription.
   */
  update: (series: readonly string[]) => boolean
  close: () => void
}

/** A subscribe message's selection: every ticker here at every resolution here. */
export interface SeriesGroup {
  tickers: string[]
  resolutions: string[]
}

/**
 * Packs series keys into as few tickers × resolutions groups as cover them exactly
 * (tickers watched at the same resolutions share a group), so changing the selection
 * costs a message or two, far below the gateway's flood limit.
 */
export function groupSeries (series: Iterable<string>): SeriesGroup[] {
  const byTicker = new Map<string, string[]>()
  for (const key of series) {
    const at = key.indexOf('#')
    if (at <= 0) continue
    const ticker = key.slice(0, at)
    const list = byTicker.get(ticker) ?? []
    list.push(key.slice(at + 1))
    byTicker.set(ticker, list)
  }
  const groups = new Map<string, SeriesGroup>()
  for (const [ticker, resolutions] of byTicker) {
    const sorted = [...resolutions].sort()
    const signature = sorted.join(',')
    const group = groups.get(signature) ?? { tickers: [], resolutions: sorted }
    group.tickers.push(ticker)
    groups.set(signature, group)
  }
  return [...groups.values()]
}

/**
 * The stream URL selects every listed ticker at every listed resolution, so a selection
 * that is not such a product is widened to one; tickers are left off from the end (the
 * list's overview, never the first group: the selected ticker) until it fits `limit`.
 */
export function sseSelection (series: readonly string[], limit: number): { tickers: string[], resolutions: string[] } {
  const groups = groupSeries(series)
  const tickers: string[] = []
  const resolutions = new Set<string>()
  for (const group of groups) {
    for (const r of group.resolutions) resolutions.add(r)
    for (const ticker of group.tickers) {
      if (tickers.length > 0 && (tickers.length + 1) * resolutions.size > limit) break
      tickers.push(ticker)
    }
  }
  return { tickers, resolutions: [...resolutions] }
}

/** Parses a message's JSON, giving `undefined` for anything that is not an object. */
export function parseMessage (text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

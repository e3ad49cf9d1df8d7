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
  /** Empty means every ticker. */
  tickers: readonly string[]
  resolutions: readonly string[]
  /** Id of the last event seen, to resume after it. */
  since: string | undefined
}

/** An open (or opening) connection. */
export interface Transport {
  readonly kind: 'ws' | 'sse'
  close: () => void
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

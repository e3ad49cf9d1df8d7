/*
 * The client's typed contract: what `connect` takes, the states its connection goes
 * through, and the events it reports.
 */
import type { BackoffOptions } from './backoff.js'
import type { PulseClientError } from './errors.js'
import type { TokenSource } from './token-supply.js'
import type { WebSocketConstructor } from './transport.js'

/**
 * The connection as a user sees it: `connecting` until the first connection is up, `live`
 * over WebSocket, `fallback` live over Server-Sent Events, `reconnecting` after a loss,
 * `offline` while the browser has no network, `closed` after `PulseClient.close`.
 */
export type ConnectionState = 'connecting' | 'live' | 'fallback' | 'reconnecting' | 'offline' | 'closed'

/** What `connect` takes. */
export interface ClientOptions {
  /** The gateway (or its load balancer), e.g. `https://pulse.example.com`. */
  url: string | URL
  /** `READ_TOKEN` or a reader JWT when the gateway requires one; a supplier function lets the SDK refresh a JWT before it expires. */
  token?: TokenSource
  /** A WebSocket implementation where there is no global one (Node 20: the `ws` package). */
  WebSocket?: WebSocketConstructor
  /** A `fetch` for history and event streams (default: the global one). */
  fetch?: typeof fetch
  /** Transports in order of preference (default WebSocket, then SSE). */
  transports?: ReadonlyArray<'ws' | 'sse'>
  /** Silence after which a connection counts as dead (default 35 s; gateways send a heartbeat every 15 s). */
  watchdogMs?: number
  /** Reconnection delays (full jitter, default 0.5 s doubling up to 20 s). */
  backoff?: BackoffOptions
  /** On SSE, how long a changed selection waits before the stream is reopened (default 1 s). */
  sseResubscribeMs?: number
}

/** The events of a `PulseClient`. */
export interface ClientEvents {
  [name: string]: (...args: never[]) => void
  state: (state: ConnectionState, previous: ConnectionState) => void
  /** A refusal or limit that concerns the whole client (a subscription's own go to it). */
  error: (error: PulseClientError) => void
}

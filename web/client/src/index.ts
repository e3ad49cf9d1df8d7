/**
 * `@pulse/client`: Pulse's live sentiment streams for browsers and Node ≥ 22.
 *
 * ```ts
 * const pulse = connect({ url: 'https://pulse.example.com' })
 * pulse.subscribe('AAPL', ['1m', '1h'], (bucket) => draw(bucket))
 * ```
 */
export { Backoff, type BackoffOptions } from './backoff.js'
export { type ClientEvents, type ClientOptions, connect, type ConnectionState, PulseClient, type TimeInput, type TokenSource } from './client.js'
export { PulseClientError } from './errors.js'
export { type SubscribeOptions, Subscription, type SubscriptionEvents, type SubscriptionState } from './series.js'
export type { WebSocketConstructor, WebSocketLike } from './transport.js'
export type * from './types.js'

/*
 * The streaming protocol's limits and close codes: what the gateway enforces and what the
 * dashboard stays within. No imports, so the browser bundle takes it as it is.
 */

/** Largest WebSocket message a client may send; larger ones close the socket with 1009. */
export const MAX_MESSAGE_BYTES = 16 * 1024

/** Most `ticker#resolution` subscriptions one client may hold. */
export const MAX_SUBSCRIPTIONS = 200

/**
 * The message budget of one WebSocket client: a burst of {@link MESSAGE_BURST} messages,
 * refilled at {@link MESSAGES_PER_SECOND}. Past it messages are dropped with
 * `PULSE_ERR_FLOOD`, and a client that keeps on is closed with 1008.
 */
export const MESSAGE_BURST = 50
export const MESSAGES_PER_SECOND = 25

/** Seconds a client refused at the connection limit is told to wait (`Retry-After`). */
export const RETRY_AFTER_SECONDS = 5

/** WebSocket close codes the gateway uses. */
export const CloseCode = {
  /** RFC 6455: the message was too big to process. */
  tooLarge: 1009,
  /** RFC 6455: policy violation — the client flooded the gateway with messages. */
  flood: 1008,
  /** IANA: service restart — reconnect (and resume) now. */
  restart: 1012,
  /** IANA: try again later — the client stopped reading and fell too far behind. */
  stalled: 1013,
  /** Pulse: the reader's JWT reached its `exp` without a `refresh`; reconnect with a new token. */
  expired: 4001
} as const

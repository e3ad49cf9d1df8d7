/**
 * Every error Pulse returns, one entry per code: HTTP status and default message. HTTP
 * responses carry `{"error":{"code","message","details"?}}`; WebSocket `error` events carry
 * the same code and message. README.md documents each code (a test checks it).
 */
export const ERRORS = {
  PULSE_ERR_VALIDATION: { status: 400, message: 'The request is invalid; details names each problem' },
  PULSE_ERR_ITEM_TOO_OLD: { status: 400, message: 'An item is older than the longest retention' },
  PULSE_ERR_EMPTY_BATCH: { status: 400, message: 'A batch needs at least one item' },
  PULSE_ERR_BATCH_TOO_LARGE: { status: 400, message: 'A batch holds at most 1000 items' },
  PULSE_ERR_MALFORMED_BODY: { status: 400, message: 'The body must be JSON, or NDJSON with Content-Type application/x-ndjson, and cannot be parsed' },
  PULSE_ERR_BAD_RESOLUTION: { status: 400, message: 'resolution must be one of 1m 5m 10m 1h 3h 6h 12h 24h' },
  PULSE_ERR_BAD_RANGE: { status: 400, message: 'start and end must be ISO 8601 times with zone, start before end' },
  PULSE_ERR_RANGE_TOO_LARGE: { status: 400, message: 'The range spans more than 1500 buckets' },
  PULSE_ERR_OUTSIDE_RETENTION: { status: 400, message: 'The range holds no time that is still retained at this resolution' },
  PULSE_ERR_BAD_FORMAT: { status: 400, message: 'format must be csv or ndjson' },
  PULSE_ERR_BAD_ENCODING: { status: 400, message: 'encoding must be full or delta' },
  PULSE_ERR_UNAUTHORIZED: { status: 401, message: 'Missing or wrong credentials' },
  PULSE_ERR_TOKEN_EXPIRED: { status: 401, message: 'The token has expired; get a new one' },
  PULSE_ERR_NOT_ENTITLED: { status: 403, message: 'The token does not entitle its subject to this ticker or resolution' },
  PULSE_ERR_PRODUCER_SCOPE: { status: 403, message: 'The batch names a ticker outside the scope of this ingest key; nothing of it was accepted' },
  PULSE_ERR_FORBIDDEN_ORIGIN: { status: 403, message: 'The Origin is not one of ALLOWED_ORIGINS' },
  PULSE_ERR_UNKNOWN_TICKER: { status: 404, message: 'Unknown ticker' },
  PULSE_ERR_ADMIN_DISABLED: { status: 404, message: 'The admin API is off: ADMIN_TOKEN is not set on this gateway' },
  PULSE_ERR_TICKER_RETIRED: { status: 409, message: 'The ticker is retired: it accepts no more items; its history stays readable until its retention ends' },
  PULSE_ERR_NOT_FOUND: { status: 404, message: 'No such route' },
  PULSE_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'The route does not accept this method; the Allow header lists those it does' },
  PULSE_ERR_BODY_TOO_LARGE: { status: 413, message: 'The body is larger than 1 MB' },
  PULSE_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Send application/json or application/x-ndjson' },
  PULSE_ERR_RATE_LIMITED: { status: 429, message: 'Too many requests' },
  PULSE_ERR_TOO_MANY_CONNECTIONS: { status: 503, message: 'The gateway is at its connection limit' },
  PULSE_ERR_UNAVAILABLE: { status: 503, message: 'A dependency is unavailable; retry later' },
  PULSE_ERR_BACKLOG_FULL: { status: 503, message: 'Ingest is behind: more accepted items wait to be folded than the configured backlog allows; nothing of this batch was accepted, retry after Retry-After seconds' },
  PULSE_ERR_SHUTTING_DOWN: { status: 503, message: 'The gateway is shutting down; reconnect' },
  PULSE_ERR_INTERNAL: { status: 500, message: 'Pulse failed to answer because of an internal error; the log has the details' },
  PULSE_ERR_BAD_MESSAGE: { status: 400, message: 'The message is not valid' },
  PULSE_ERR_MESSAGE_TOO_LARGE: { status: 413, message: 'The message is larger than 16 KB' },
  PULSE_ERR_TOO_MANY_SUBSCRIPTIONS: { status: 400, message: 'A client may hold at most 200 subscriptions' },
  PULSE_ERR_FLOOD: { status: 429, message: 'Too many messages; slow down' }
} as const satisfies Record<string, { status: number, message: string }>

export type ErrorCode = keyof typeof ERRORS

/** One problem in a request, as listed in `details`. */
export interface ErrorDetail {
  index?: number
  field: string
  message: string
}

/** An error that knows its catalogue code; the gateway turns it into the JSON error body. */
export class PulseError extends Error {
  readonly status: number
  constructor (readonly code: ErrorCode, message?: string, readonly details?: ErrorDetail[]) {
    super(message ?? ERRORS[code].message)
    this.name = 'PulseError'
    this.status = ERRORS[code].status
  }
}

export function errorBody (code: ErrorCode, message?: string, details?: ErrorDetail[]): { error: { code: ErrorCode, message: string, details?: ErrorDetail[] } } {
  const body: { code: ErrorCode, message: string, details?: ErrorDetail[] } = { code, message: message ?? ERRORS[code].message }
  if (details !== undefined) body.details = details
  return { error: body }
}

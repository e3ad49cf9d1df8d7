import { STATUS_CODES } from 'node:http'
import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import { type ErrorCode, ERRORS, errorBody } from '../../../shared/errors.js'

/* What the uWS edge reads from a request, and how it answers with a catalogue error. */

/**
 * What the edge needs from a uWS request. uWS frees its `HttpRequest` when the handler
 * returns, so everything is copied out before any asynchronous work starts.
 */
export interface EdgeRequest {
  /** As the client sent it, e.g. `GET`. */
  method: string
  /** Path and query string, as Fastify's `inject` takes it. */
  url: string
  query: URLSearchParams
  /** Lower-case names; repeated headers joined with `, `. */
  headers: Record<string, string>
  remoteAddress: string
}

/** Copies a uWS request into an {@link EdgeRequest}; call before the handler returns. */
export function readRequest (res: HttpResponse, req: HttpRequest): EdgeRequest {
  const headers: Record<string, string> = {}
  req.forEach((name, value) => {
    const seen = headers[name]
    headers[name] = seen === undefined ? value : `${seen}, ${value}`
  })
  const query = req.getQuery() ?? ''
  return {
    method: req.getCaseSensitiveMethod(),
    url: query === '' ? req.getUrl() : `${req.getUrl()}?${query}`,
    query: new URLSearchParams(query),
    headers,
    remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString()
  }
}

/** An HTTP status line as uWS writes it: `503 Service Unavailable`. */
export function statusLine (status: number): string {
  return `${status} ${STATUS_CODES[status] ?? ''}`
}

/**
 * Answers with a catalogue error, as the Fastify error handler would. Call from the
 * request handler or inside `res.cork`.
 */
export function sendError (res: HttpResponse, code: ErrorCode, message?: string, headers: Record<string, string> = {}): void {
  res.writeStatus(statusLine(ERRORS[code].status))
  res.writeHeader('content-type', 'application/json; charset=utf-8')
  for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value)
  res.end(JSON.stringify(errorBody(code, message)))
}

import { STATUS_CODES } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import uWS, { type HttpRequest, type HttpResponse } from 'uWebSockets.js'
import { type ErrorCode, ERRORS, errorBody } from '../../../shared/errors.js'
import { forwardTo } from './forward.js'
import { edgeContext, sseRoute, wsBehavior } from './streams.js'

/** How long `close` lets stream clients receive their reconnect notice before sockets are cut. */
const CLOSE_NOTICE_MS = 1000

/** A running uWebSockets.js edge in front of a Fastify app. */
export interface UwsEdge {
  /** `http://host:port`, as Fastify's `listen` reports it. */
  url: string
  port: number
  /** Stops accepting, tells stream clients to reconnect, then closes every socket. */
  close: () => Promise<void>
}

export interface UwsEdgeOptions {
  host: string
  /** 0 picks a free port. */
  port: number
}

/**
 * Starts the `GATEWAY_ENGINE=uws` edge: WebSocket `/api/v2/ws` and SSE `/api/v2/stream`
 * served natively by uWebSockets.js through the app's streaming hub, every other request
 * forwarded to `app` (built and ready, not listening).
 */
export async function startUwsEdge (app: FastifyInstance, options: UwsEdgeOptions): Promise<UwsEdge> {
  // The package falls back to a slower `ws`-based imitation when its binary does not load;
  // that would make the engine's figures meaningless, so it is refused.
  if (typeof uWS.getParts !== 'function') throw new Error(`GATEWAY_ENGINE=uws: uWebSockets.js has no native binary for Node ${process.version} on ${process.platform}-${process.arch} (this build ships them for Node 16, 18 and 20)`)
  const context = edgeContext(app)
  // `close` exists in this uWS build but is missing from its type declarations.
  const server = uWS.App() as uWS.TemplatedApp & { close: () => void }
  server.ws('/api/v2/ws', wsBehavior(context, server))
    .get('/api/v2/stream', sseRoute(context))
    .any('/*', forwardTo(app))
  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) => {
    server.listen(options.host, options.port, (socket) => {
      if (socket === false) reject(new Error(`uWebSockets.js could not listen on ${options.host}:${options.port}`))
      else resolve(socket)
    })
  })
  const port = uWS.us_socket_local_port(listenSocket)
  const host = options.host.includes(':') ? `[${options.host}]` : options.host
  let closing: Promise<void> | undefined
  return {
    url: `http://${host}:${port}`,
    port,
    close: async () => {
      closing ??= (async () => {
        uWS.us_listen_socket_close(listenSocket)
        context.hub.shutdown()
        const deadline = Date.now() + CLOSE_NOTICE_MS
        while (context.hub.limiter.count > 0 && Date.now() < deadline) await sleep(20)
        server.close()
      })()
      await closing
    }
  }
}

// ---- Requests and errors

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

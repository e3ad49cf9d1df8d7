import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type * as Uws from 'uWebSockets.js'
import { forwardTo } from './forward.js'
import uWS from './native.js'
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
  const context = edgeContext(app)
  // `close` exists in this uWS build but is missing from its type declarations.
  const server = uWS.App() as Uws.TemplatedApp & { close: () => void }
  server.ws('/api/v2/ws', wsBehavior(context, server))
    .get('/api/v2/stream', sseRoute(context))
    .any('/*', forwardTo(app))
  const listenSocket = await new Promise<Uws.us_listen_socket>((resolve, reject) => {
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

import { PassThrough } from 'node:stream'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import { errorBody } from '../../../shared/errors.js'
import { type EdgeRequest, readRequest, statusLine } from './request.js'

/** The gateway's body limit (Fastify `bodyLimit`); past it Fastify answers 413 and the rest is not read. */
const BODY_LIMIT_BYTES = 1_048_576

/** Headers uWS writes itself, or that describe the in-process hop rather than the client's connection. */
const HOP_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date'])

function hasBody (request: EdgeRequest): boolean {
  const length = request.headers['content-length']
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/** Streams the request body into Fastify, up to one chunk past the limit so Fastify sees it is too large. */
function bodyStream (res: HttpResponse): { stream: PassThrough, complete: () => boolean } {
  const stream = new PassThrough()
  let received = 0
  let complete = false
  res.onData((chunk, isLast) => {
    if (stream.writableEnded) return
    received += chunk.byteLength
    // uWS reuses the chunk's memory after this callback, so it is copied.
    stream.write(Buffer.from(new Uint8Array(chunk)))
    if (isLast) complete = true
    if (isLast || received > BODY_LIMIT_BYTES) stream.end()
  })
  return { stream, complete: () => complete }
}

function send (res: HttpResponse, reply: LightMyRequestResponse, head: boolean, closeConnection: boolean): void {
  res.writeStatus(statusLine(reply.statusCode))
  for (const [name, value] of Object.entries(reply.headers)) {
    if (value === undefined || HOP_HEADERS.has(name)) continue
    for (const one of Array.isArray(value) ? value : [value]) res.writeHeader(name, String(one))
  }
  const close = closeConnection || reply.headers.connection === 'close'
  // uWS keeps a HEAD connection waiting for the announced body unless it is closed.
  if (head) res.endWithoutBody(Number(reply.headers['content-length'] ?? 0), true)
  else res.end(reply.rawPayload, close)
}

/**
 * Every route the uWS edge does not serve itself goes to the Fastify app through
 * `inject`: same hooks, validation, rate limits (keyed by the client's address, which is
 * passed on) and error bodies, without a second listening port. The request body is
 * streamed in as it arrives; the response is sent once Fastify has produced it.
 */
export function forwardTo (app: FastifyInstance): (res: HttpResponse, req: HttpRequest) => void {
  return (res, req) => {
    const request = readRequest(res, req)
    let aborted = false
    const body = hasBody(request) ? bodyStream(res) : undefined
    res.onAborted(() => {
      aborted = true
      body?.stream.destroy()
    })
    app.inject({
      method: request.method as InjectOptions['method'],
      url: request.url,
      headers: request.headers,
      remoteAddress: request.remoteAddress,
      ...(body === undefined ? {} : { payload: body.stream })
    }).then((reply) => {
      if (aborted) return
      res.cork(() => send(res, reply, request.method === 'HEAD', body !== undefined && !body.complete()))
    }, (err: unknown) => {
      // A client that went away mid-body fails its injection too; that is not worth a warning.
      if (aborted) return
      app.log.warn({ err }, 'forwarding to the Fastify app failed')
      res.cork(() => {
        res.writeStatus(statusLine(500)).writeHeader('content-type', 'application/json; charset=utf-8')
        res.end(JSON.stringify(errorBody('PULSE_ERR_INTERNAL')), true)
      })
    })
  }
}

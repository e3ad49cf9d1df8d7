import websocket from '@fastify/websocket'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { RawData, WebSocket } from 'ws'
import { SecretSet } from '../plugins/auth.js'
import { admitStream, releaseOf } from './admission.js'
import hubPlugin, { openConnection } from './hub-plugin.js'
import { MAX_MESSAGE_BYTES } from './limits.js'
import { listParam } from './subscriptions.js'
import { WsSession } from './ws-session.js'
import { wsSink } from './ws-sink.js'

interface WsQuery {
  tickers?: string
  resolutions?: string
  since?: string
  token?: string
  batch?: string
}

function text (data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8')
  return Buffer.from(data as ArrayBuffer).toString('utf8')
}

async function wsPlugin (app: FastifyInstance): Promise<void> {
  if (!app.hasDecorator('streaming')) await app.register(hubPlugin)
  const { config } = app.pulse
  const hub = app.streaming
  const known = new Set(config.tickers)
  const readToken = config.readToken === undefined ? undefined : new SecretSet([config.readToken])

  await app.register(websocket, {
    options: { maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false },
    preClose: function (this: FastifyInstance, done: () => void) {
      hub.shutdown()
      this.websocketServer.close()
      done()
    }
  })

  app.get<{ Querystring: WsQuery }>('/api/v2/ws', {
    websocket: true,
    preValidation: admitStream(app, readToken, true),
    schema: {
      summary: 'WebSocket stream of bucket events (SPEC §4)',
      tags: ['streaming'],
      querystring: Type.Object({
        tickers: Type.Optional(Type.String({ description: 'initial subscription: comma-separated tickers' })),
        resolutions: Type.Optional(Type.String({ description: 'initial subscription: comma-separated resolutions' })),
        since: Type.Optional(Type.String({ description: 'event id to resume from' })),
        token: Type.Optional(Type.String()),
        batch: Type.Optional(Type.String({ description: '1: a flush is one message holding a JSON array of events' }))
      })
    }
  }, (socket: WebSocket, request) => {
    const release = releaseOf(request)
    const log = request.log.child({ conn: request.id })
    const actor = openConnection(app, wsSink(socket, request.query.batch === '1'), 'ws', (closed) => {
      release()
      log.debug({ sent: closed.sent }, 'websocket closed')
    })
    log.debug('websocket opened')
    const session = new WsSession(actor, hub, app.pulse, known)
    socket.on('message', (data, isBinary) => session.handle(isBinary ? '' : text(data)))
    socket.on('close', () => actor.onSocketClosed())
    socket.on('error', () => actor.onSocketClosed())
    const tickers = listParam(request.query.tickers)
    if (tickers.length > 0) {
      const message = {
        op: 'subscribe' as const,
        tickers,
        resolutions: request.query.resolutions === undefined ? ['1m'] : listParam(request.query.resolutions),
        ...(request.query.since === undefined ? {} : { since: request.query.since })
      }
      session.subscribe(message).catch((err: unknown) => log.warn({ err }, 'initial subscription failed'))
    }
  })
}

/** `GET /api/v2/ws`: the WebSocket endpoint (SPEC §4). */
export default fp(wsPlugin, { name: 'pulse-ws', fastify: '5.x' })

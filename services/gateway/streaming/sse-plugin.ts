import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { PulseError } from '../../../shared/errors.js'
import { SecretSet } from '../plugins/auth.js'
import { admitStream, releaseOf } from './admission.js'
import { parseEventId } from './event-id.js'
import hubPlugin, { openConnection } from './hub-plugin.js'
import { MAX_SUBSCRIPTIONS } from './limits.js'
import { nodeSseWriter, SSE_HEADERS, SSE_PREAMBLE, sseSink } from './sse-sink.js'
import { listParam, replaySince, selectSeries } from './subscriptions.js'

interface SseQuery {
  tickers?: string
  resolutions?: string
  lastEventId?: string
  token?: string
}

async function ssePlugin (app: FastifyInstance): Promise<void> {
  if (!app.hasDecorator('streaming')) await app.register(hubPlugin)
  const { config } = app.pulse
  const hub = app.streaming
  const known = new Set(config.tickers)
  const readToken = config.readToken === undefined ? undefined : new SecretSet([config.readToken])

  app.get<{ Querystring: SseQuery }>('/api/v2/stream', {
    // Parameters are checked in the handler so each problem gets its catalogue code.
    validatorCompiler: () => (value: unknown) => ({ value }),
    schema: {
      summary: 'Server-Sent Events stream of bucket events (SPEC §4)',
      tags: ['streaming'],
      querystring: Type.Object({
        resolutions: Type.Optional(Type.String({ description: 'comma-separated; default 1m' })),
        tickers: Type.Optional(Type.String({ description: 'comma-separated; empty: every configured ticker' })),
        lastEventId: Type.Optional(Type.String({ description: 'resume point when the Last-Event-ID header cannot be set' })),
        token: Type.Optional(Type.String({ description: 'READ_TOKEN, for EventSource' }))
      })
    },
    // Validate the selection before taking a connection slot.
    onRequest: async (request) => {
      const query = request.query as SseQuery
      const tickers = listParam(query.tickers)
      const selected = selectSeries(tickers.length === 0 ? config.tickers : tickers, query.resolutions === undefined ? ['1m'] : listParam(query.resolutions), known)
      if (!Array.isArray(selected)) throw new PulseError(selected.code, selected.message)
      if (selected.length === 0) throw new PulseError('PULSE_ERR_BAD_RESOLUTION')
      if (selected.length > MAX_SUBSCRIPTIONS) throw new PulseError('PULSE_ERR_TOO_MANY_SUBSCRIPTIONS')
    },
    preValidation: admitStream(app, readToken, false)
  }, async (request, reply) => {
    const query = request.query
    const tickers = listParam(query.tickers)
    const series = selectSeries(tickers.length === 0 ? config.tickers : tickers, query.resolutions === undefined ? ['1m'] : listParam(query.resolutions), known)
    if (!Array.isArray(series)) throw new PulseError(series.code, series.message)
    const header = request.headers['last-event-id']
    const since = parseEventId(typeof header === 'string' ? header : query.lastEventId)
    const release = releaseOf(request)
    const log = request.log.child({ conn: request.id })

    reply.hijack()
    const res = reply.raw
    request.raw.socket.setTimeout(0)
    res.writeHead(200, SSE_HEADERS)
    res.write(SSE_PREAMBLE)
    const actor = openConnection(app, sseSink(nodeSseWriter(res)), 'sse', (closed) => {
      release()
      log.debug({ sent: closed.sent }, 'event stream closed')
    })
    log.debug('event stream opened')
    res.on('close', () => actor.onSocketClosed())
    await Promise.all(series.map(async (key) => await hub.join(actor, key)))
    if (since !== undefined) {
      for (const event of await replaySince(app.pulse.cache, series, since, app.pulse.now())) actor.offer(event)
    }
  })
}

/** `GET /api/v2/stream`: the Server-Sent Events endpoint (SPEC §4). */
export default fp(ssePlugin, { name: 'pulse-sse', fastify: '5.x' })

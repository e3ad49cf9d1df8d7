import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { PulseError } from '../../../shared/errors.js'
import { toWireBucket } from '../../../shared/timeseries/bucket.js'
import { readAccess } from '../plugins/read-access.js'
import { BucketSchema } from '../schemas.js'
import { TickerBoard } from '../ticker-board.js'

/**
 * `GET /api/v2/tickers`: the active tickers of the registry (those the reader is entitled to) with their current 1m and 24h buckets,
 * answered from the gateway's {@link TickerBoard}: read from the stores once, then kept
 * current by the bus, so a listing costs no store read however many tickers there are. A
 * hot state that does not answer the first load fails the request (503), and the next
 * request tries again.
 */
export default async function tickerRoutes (app: FastifyInstance): Promise<void> {
  const { config, hot, archive, bus, metrics, tickers } = app.pulse
  const board = new TickerBoard({
    tickers: () => tickers.current().active,
    hot,
    archive,
    bus,
    now: app.pulse.now,
    breaker: app.pulse.cache.archiveBreaker,
    onInvalidEvent: (problem, series) => {
      metrics?.busMessagesDropped.inc()
      app.log.warn({ series, problem }, 'dropped an invalid bus message')
    }
  })
  app.addHook('onClose', async () => { await board.close() })
  app.withTypeProvider<TypeBoxTypeProvider>().get('/api/v2/tickers', {
    onRequest: readAccess(app),
    config: { rateLimit: config.rateLimitRead > 0 ? { max: config.rateLimitRead, timeWindow: '1 minute' } : false },
    schema: {
      summary: 'Active tickers with their live 1m and 24h partial buckets',
      tags: ['history'],
      response: {
        200: Type.Object({
          tickers: Type.Array(Type.Object({
            ticker: Type.String(),
            partial_1m: Type.Union([BucketSchema, Type.Null()]),
            partial_24h: Type.Union([BucketSchema, Type.Null()])
          }))
        })
      }
    }
  }, async (request) => {
    const now = app.pulse.now()
    let current
    try {
      current = await board.current(now)
    } catch (err) {
      app.log.warn({ err }, 'tickers listing: the hot state did not answer')
      throw new PulseError('PULSE_ERR_UNAVAILABLE', 'The tickers listing is unavailable: the hot state did not answer; retry later')
    }
    const wire = (ticker: string, resolution: '1m' | '24h'): ReturnType<typeof toWireBucket> | null => {
      const bucket = current(ticker, resolution)
      return bucket === null ? null : toWireBucket(bucket, now)
    }
    // A reader sees the tickers it is entitled to, and no other.
    const active = tickers.current().active
    const visible = request.reader === undefined ? active : active.filter((ticker) => request.reader?.entitlement.allowsTicker(ticker) === true)
    return { tickers: visible.map((ticker) => ({ ticker, partial_1m: wire(ticker, '1m'), partial_24h: wire(ticker, '24h') })) }
  })
}

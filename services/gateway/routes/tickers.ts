import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { bucketStart, type Resolution, toWireBucket, type WireBucket } from '../../../shared/timeseries/index.js'
import { readAccess } from '../plugins/read-access.js'
import { BucketSchema } from '../schemas.js'

/** `GET /api/v2/tickers`: the configured tickers with their current 1m and 24h buckets. */
export default async function tickerRoutes (app: FastifyInstance): Promise<void> {
  const { config, cache } = app.pulse
  const current = async (ticker: string, resolution: Resolution, now: number): Promise<WireBucket | null> => {
    const { buckets } = await cache.read(ticker, resolution)
    const last = buckets.at(-1)
    return last !== undefined && last.start === bucketStart(now, resolution) ? toWireBucket(last, now) : null
  }
  app.get('/api/v2/tickers', {
    onRequest: readAccess(config.readToken),
    config: { rateLimit: config.rateLimitRead > 0 ? { max: config.rateLimitRead, timeWindow: '1 minute' } : false },
    schema: {
      summary: 'Configured tickers with their live 1m and 24h partial buckets',
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
  }, async () => {
    const now = app.pulse.now()
    const tickers = await Promise.all(config.tickers.map(async (ticker) => ({
      ticker,
      partial_1m: await current(ticker, '1m', now),
      partial_24h: await current(ticker, '24h', now)
    })))
    return { tickers }
  })
}

import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { type Bucket, type BucketRef, bucketId, bucketStart, toWireBucket } from '../../../shared/timeseries/index.js'
import { readAccess } from '../plugins/read-access.js'
import { BucketSchema } from '../schemas.js'

/**
 * `GET /api/v2/tickers`: the configured tickers with their current 1m and 24h buckets.
 *
 * Only the current buckets are read, in one round trip to the hot state for every ticker
 * (it holds every bucket a fold touched) and one batched read of the archive for those it
 * lacks (a hot state that restarted empty); loading each series' whole window would cost
 * thousands of reads and subscriptions with a thousand tickers. An archive that does not
 * answer leaves those buckets out (the archive is degraded, the hot state is current); a
 * hot state that does not answer fails the request.
 */
export default async function tickerRoutes (app: FastifyInstance): Promise<void> {
  const { config, hot, archive } = app.pulse
  const currentBuckets = async (now: number): Promise<Map<string, Bucket>> => {
    const refs: BucketRef[] = config.tickers.flatMap((ticker) => (['1m', '24h'] as const).map((resolution) => ({ ticker, resolution, start: bucketStart(now, resolution) })))
    const found = new Map((await hot.get(refs)).map((bucket) => [bucketId(bucket), bucket]))
    const missing = refs.filter((ref) => !found.has(bucketId(ref)))
    if (missing.length > 0) {
      for (const bucket of await archive.get(missing, now).catch(() => [])) found.set(bucketId(bucket), bucket)
    }
    return found
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
    const found = await currentBuckets(now)
    const wire = (ticker: string, resolution: '1m' | '24h'): ReturnType<typeof toWireBucket> | null => {
      const bucket = found.get(bucketId({ ticker, resolution, start: bucketStart(now, resolution) }))
      return bucket === undefined ? null : toWireBucket(bucket, now)
    }
    return { tickers: config.tickers.map((ticker) => ({ ticker, partial_1m: wire(ticker, '1m'), partial_24h: wire(ticker, '24h') })) }
  })
}

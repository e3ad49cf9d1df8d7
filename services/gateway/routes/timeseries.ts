import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { readAccess, requireEntitled } from '../plugins/read-access.js'
import { PulseError } from '../../../shared/errors.js'
import { violationMessage } from '../../../shared/validation-messages.js'
import { isResolution, type Resolution } from '../../../shared/timeseries/resolutions.js'
import { readableTickers, type TickerLookup } from '../readable-tickers.js'
import { HISTORY_PAGE_BUCKETS, queryHistory } from '../history.js'
import { ErrorSchema, ResolutionSchema, TimeseriesPageSchema } from '../schemas.js'

/** Checks a ticker path parameter against the readable tickers (active, or retired with history retained): others are 404. */
export function knownTicker (tickers: TickerLookup, ticker: string): string {
  if (!tickers.has(ticker)) throw new PulseError('PULSE_ERR_UNKNOWN_TICKER', `Unknown ticker ${JSON.stringify(ticker.slice(0, 32))}`)
  return ticker
}

/** Checks a `resolution` query parameter: missing or not one of the eight is a 400. */
export function knownResolution (resolution: unknown): Resolution {
  if (!isResolution(resolution)) {
    const message = violationMessage({ field: 'resolution', rule: resolution === undefined ? 'missing' : 'choice', schema: ResolutionSchema, value: resolution }, 'the query')
    throw new PulseError('PULSE_ERR_BAD_RESOLUTION', message, [{ field: 'resolution', message }])
  }
  return resolution
}

/**
 * `GET /api/v2/timeseries/:ticker`: history from the L1 series cache, in pages of
 * {@link HISTORY_PAGE_BUCKETS} buckets (its download form, `…/:ticker/export`, is ./export.ts).
 */
export default async function timeseriesRoutes (app: FastifyInstance): Promise<void> {
  const { config } = app.pulse
  const tickers = readableTickers(app.pulse.tickers, app.pulse.now)
  app.withTypeProvider<TypeBoxTypeProvider>().get<{ Params: { ticker: string }, Querystring: { resolution?: string, start?: string, end?: string } }>('/api/v2/timeseries/:ticker', {
    onRequest: readAccess(app),
    // Parameters are checked below so each problem gets its own catalogue code.
    validatorCompiler: () => (value: unknown) => ({ value }),
    config: { rateLimit: config.rateLimitRead > 0 ? { max: config.rateLimitRead, timeWindow: '1 minute' } : false },
    schema: {
      summary: 'Buckets of one ticker at one resolution',
      tags: ['history'],
      params: Type.Object({ ticker: Type.String() }),
      querystring: Type.Object({
        resolution: ResolutionSchema,
        start: Type.Optional(Type.String({ description: 'ISO 8601; default end minus the retention' })),
        end: Type.Optional(Type.String({ description: 'ISO 8601; default now' }))
      }),
      response: { 200: TimeseriesPageSchema, 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema }
    }
  }, async (request) => {
    const ticker = knownTicker(tickers, request.params.ticker)
    const { start, end } = request.query
    const resolution = knownResolution(request.query.resolution)
    requireEntitled(request, ticker, resolution)
    if (Array.isArray(start) || Array.isArray(end)) throw new PulseError('PULSE_ERR_BAD_RANGE', 'start and end must each be given at most once; got one of them twice')
    return await queryHistory(app.pulse.cache, { ticker, resolution, start, end }, app.pulse.now, { size: HISTORY_PAGE_BUCKETS })
  })
}

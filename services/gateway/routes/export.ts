import { Readable } from 'node:stream'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { PulseError } from '../../../shared/errors.js'
import type { WireBucket } from '../../../shared/timeseries/bucket.js'
import type { Resolution } from '../../../shared/timeseries/resolutions.js'
import { csvHeader, csvPage, EXPORT_CONTENT_TYPES, EXPORT_FORMATS, type ExportFormat, isExportFormat, ndjsonPage } from '../export/export-format.js'
import { exportPages } from '../export/export-pages.js'
import { resolveExportRange } from '../export/export-range.js'
import { readAccess, requireEntitled } from '../plugins/read-access.js'
import { ErrorSchema, ResolutionSchema } from '../schemas.js'
import { readableTickers } from '../readable-tickers.js'
import { knownResolution, knownTicker } from './timeseries.js'

const FormatSchema = Type.Union(EXPORT_FORMATS.map((f) => Type.Literal(f)), { description: 'csv (default) or ndjson' })

/** `20261207T101500Z`: an ISO time fit for a file name on every system. */
function fileTime (ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')
}

/** The download's file name: series, asked range and format (tickers are `[A-Z0-9.]`, so nothing needs quoting inside). */
export function exportFileName (ticker: string, resolution: Resolution, from: number, to: number, format: ExportFormat): string {
  return `${ticker}_${resolution}_${fileTime(from)}_${fileTime(to)}.${format}`
}

/** The body: the CSV header row, then each page as it is read. */
async function * encode (format: ExportFormat, first: IteratorResult<WireBucket[]>, rest: AsyncGenerator<WireBucket[]>): AsyncGenerator<string> {
  if (format === 'csv') yield csvHeader()
  const write = format === 'csv' ? (page: WireBucket[]) => csvPage(page, false) : ndjsonPage
  if (first.done !== true && first.value.length > 0) yield write(first.value)
  for await (const page of rest) if (page.length > 0) yield write(page)
}

/**
 * `GET /api/v2/timeseries/:ticker/export`: a retained range of one series as a CSV or
 * NDJSON download, streamed a page at a time (see export-pages.ts). The first page is read
 * before anything is sent, so bad input and an unavailable store still get a JSON error
 * with its status; a failure after that cuts the transfer short (the client sees an
 * incomplete response, never a file that looks whole). The reply stream's backpressure
 * paces the reads, and a client that goes away stops them.
 */
export default async function exportRoutes (app: FastifyInstance): Promise<void> {
  const { config, archive, hot, cache } = app.pulse
  const tickers = readableTickers(app.pulse.tickers, app.pulse.now)
  app.withTypeProvider<TypeBoxTypeProvider>().get<{ Params: { ticker: string }, Querystring: { resolution?: string, start?: string, end?: string, format?: string } }>('/api/v2/timeseries/:ticker/export', {
    onRequest: readAccess(app),
    // Parameters are checked below so each problem gets its own catalogue code.
    validatorCompiler: () => (value: unknown) => ({ value }),
    config: { rateLimit: config.rateLimitRead > 0 ? { max: config.rateLimitRead, timeWindow: '1 minute' } : false },
    schema: {
      summary: 'A retained range of one series as a CSV or NDJSON download',
      description: 'Streamed; the columns are documented in docs/api.md. Content-Disposition names the file.',
      tags: ['history'],
      params: Type.Object({ ticker: Type.String() }),
      querystring: Type.Object({
        resolution: ResolutionSchema,
        start: Type.Optional(Type.String({ description: 'ISO 8601; default end minus the retention; older than the retention reads from the oldest retained bucket' })),
        end: Type.Optional(Type.String({ description: 'ISO 8601; default now' })),
        format: Type.Optional(FormatSchema)
      }),
      response: {
        200: {
          description: 'The buckets of the range, ascending: a CSV header row then one row per bucket, or one JSON bucket per line',
          content: {
            'text/csv': { schema: Type.String() },
            'application/x-ndjson': { schema: Type.String() }
          }
        },
        400: ErrorSchema,
        401: ErrorSchema,
        403: ErrorSchema,
        404: ErrorSchema,
        503: ErrorSchema
      }
    }
  }, async (request, reply) => {
    const ticker = knownTicker(tickers, request.params.ticker)
    const { start, end, format = 'csv' } = request.query
    const resolution = knownResolution(request.query.resolution)
    requireEntitled(request, ticker, resolution)
    if (!isExportFormat(format)) {
      const message = `format must be csv or ndjson; got ${JSON.stringify(String(format).slice(0, 32))}`
      throw new PulseError('PULSE_ERR_BAD_FORMAT', message, [{ field: 'format', message }])
    }
    if (Array.isArray(start) || Array.isArray(end)) throw new PulseError('PULSE_ERR_BAD_RANGE', 'start and end must each be given at most once; got one of them twice')
    const now = app.pulse.now()
    const range = resolveExportRange({ ticker, resolution, start, end }, now)
    const stop = new AbortController()
    reply.raw.on('close', () => stop.abort())
    const pages = exportPages({ archive, hot, breaker: cache.archiveBreaker, onError: (err) => request.log.warn({ err }, 'export read failed') }, { ticker, resolution, from: range.from, to: range.to, now, signal: stop.signal })
    let first: IteratorResult<WireBucket[]>
    try {
      first = await pages.next()
    } catch (err) {
      await pages.return(undefined)
      throw err
    }
    const body = Readable.from(encode(format, first, pages), { highWaterMark: 2 })
    return await reply
      .header('content-type', EXPORT_CONTENT_TYPES[format])
      .header('content-disposition', `attachment; filename="${exportFileName(ticker, resolution, range.asked.from, range.asked.to, format)}"`)
      .header('cache-control', 'no-store')
      .send(body)
  })
}

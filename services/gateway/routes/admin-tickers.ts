import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { PulseError } from '../../../shared/errors.js'
import { quoteValue } from '../../../shared/validation-messages.js'
import { TICKER_PATTERN } from '../../../shared/timeseries/item.js'
import { toIsoSecond } from '../../../shared/timeseries/resolutions.js'
import { isTickerSymbol, type TickerEntry } from '../../../shared/timeseries/ticker-catalogue.js'
import { requireBearer, SecretSet } from '../plugins/auth.js'
import { ErrorSchema } from '../schemas.js'

const TickerEntrySchema = Type.Object({
  ticker: Type.String(),
  state: Type.Union([Type.Literal('active'), Type.Literal('retired')]),
  changed_at: Type.String({ description: 'when it was added, or retired (ISO 8601 UTC)' })
})

const TickerChangeSchema = Type.Composite([TickerEntrySchema, Type.Object({
  changed: Type.Boolean({ description: 'false when the ticker already was in that state (the call is idempotent)' })
})])

function wireEntry (entry: TickerEntry): { ticker: string, state: TickerEntry['state'], changed_at: string } {
  return { ticker: entry.ticker, state: entry.state, changed_at: toIsoSecond(entry.changedAt) }
}

/** A ticker symbol from a request, or a 400 naming the problem. */
function tickerSymbol (value: unknown, field: string): string {
  if (isTickerSymbol(value)) return value
  const message = `${field} must match ${TICKER_PATTERN}; got ${quoteValue(value)}`
  throw new PulseError('PULSE_ERR_VALIDATION', message, [{ field, message }])
}

/** `{"ticker":"…"}` and nothing else. */
function addBody (body: unknown): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new PulseError('PULSE_ERR_VALIDATION', `The body must be an object {"ticker":"…"}; got ${quoteValue(body)}`, [{ field: 'body', message: 'body must be an object with a ticker' }])
  }
  const extra = Object.keys(body).filter((key) => key !== 'ticker')
  if (extra.length > 0) {
    const message = `The body holds only ticker; got ${extra.slice(0, 5).join(', ')} too`
    throw new PulseError('PULSE_ERR_VALIDATION', message, extra.slice(0, 5).map((field) => ({ field, message: `${field} is not a field of this body` })))
  }
  return tickerSymbol((body as { ticker?: unknown }).ticker, 'ticker')
}

/**
 * The admin API of the ticker registry: list, add and retire tickers at run time, every
 * gateway and worker following within seconds. Guarded by `ADMIN_TOKEN` as a bearer
 * token; without `ADMIN_TOKEN` every admin route answers 404 `PULSE_ERR_ADMIN_DISABLED`,
 * so a deployment that never set one exposes nothing. Each change is logged as an audit line.
 */
export default async function adminTickerRoutes (app: FastifyInstance): Promise<void> {
  const { config, tickers } = app.pulse
  const secrets = config.adminToken === undefined ? undefined : new SecretSet([config.adminToken])
  const guard = async (request: FastifyRequest): Promise<void> => {
    if (secrets === undefined) throw new PulseError('PULSE_ERR_ADMIN_DISABLED')
    requireBearer(secrets, request)
  }
  const errors = { 400: ErrorSchema, 401: ErrorSchema, 404: ErrorSchema, 503: ErrorSchema }
  const typed = app.withTypeProvider<TypeBoxTypeProvider>()
  const store = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run()
    } catch (err) {
      app.log.error({ err }, `ticker registry: ${what} failed`)
      throw new PulseError('PULSE_ERR_UNAVAILABLE', `The ticker registry did not answer; nothing was changed by this request: retry it (${what} is idempotent)`)
    }
  }

  typed.get('/api/v2/admin/tickers', {
    onRequest: guard,
    schema: {
      summary: 'Every ticker of the registry, active and retired',
      tags: ['admin'],
      security: [{ bearer: [] }],
      response: { 200: Type.Object({ tickers: Type.Array(TickerEntrySchema) }), ...errors }
    }
  }, async () => {
    const catalogue = await store('reading', async () => await tickers.refresh())
    return { tickers: catalogue.entries.map(wireEntry) }
  })

  typed.post('/api/v2/admin/tickers', {
    onRequest: guard,
    // The body is checked below so each problem gets its catalogue code; the schema documents it.
    validatorCompiler: () => (value: unknown) => ({ value }),
    schema: {
      summary: 'Add a ticker (or make a retired one active again); idempotent',
      tags: ['admin'],
      security: [{ bearer: [] }],
      body: Type.Object({ ticker: Type.String({ pattern: TICKER_PATTERN }) }, { additionalProperties: false }),
      response: { 200: TickerChangeSchema, 201: TickerChangeSchema, ...errors }
    }
  }, async (request, reply) => {
    const ticker = addBody(request.body)
    const change = await store('adding', async () => await tickers.add(ticker, app.pulse.now()))
    request.log.info({ audit: 'ticker-add', ticker, changed: change.changed }, change.changed ? 'ticker added' : 'ticker already active')
    return await reply.code(change.changed ? 201 : 200).send({ ...wireEntry(change.entry), changed: change.changed })
  })

  typed.delete<{ Params: { ticker: string } }>('/api/v2/admin/tickers/:ticker', {
    onRequest: guard,
    validatorCompiler: () => (value: unknown) => ({ value }),
    schema: {
      summary: 'Retire a ticker: it accepts no more items, its history stays readable until its retention ends; idempotent',
      tags: ['admin'],
      security: [{ bearer: [] }],
      params: Type.Object({ ticker: Type.String({ pattern: TICKER_PATTERN }) }),
      response: { 200: TickerChangeSchema, ...errors }
    }
  }, async (request) => {
    const ticker = tickerSymbol(request.params.ticker, 'ticker')
    const change = await store('retiring', async () => await tickers.retire(ticker, app.pulse.now()))
    if (change === undefined) throw new PulseError('PULSE_ERR_UNKNOWN_TICKER', `Unknown ticker ${JSON.stringify(ticker)}: the registry does not hold it, so there is nothing to retire`)
    request.log.info({ audit: 'ticker-retire', ticker, changed: change.changed }, change.changed ? 'ticker retired' : 'ticker already retired')
    return { ...wireEntry(change.entry), changed: change.changed }
  })
}

import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { errorBody, PulseError } from '../../../shared/errors.js'
import { quoteValue } from '../../../shared/validation-messages.js'
import { checkBatch, ItemSchema, scoreText } from '../../../shared/timeseries/item.js'
import { admission, BACKLOG_RETRY_AFTER_S } from '../admission.js'
import { outOfScope, type Producer } from '../access/producers.js'
import { bearerToken } from '../plugins/auth.js'
import { ErrorSchema } from '../schemas.js'

export const MAX_BATCH_ITEMS = 1000
export const MAX_BODY_BYTES = 1_048_576

/** Parses NDJSON: one JSON value per non-empty line; the line number names a bad one. */
export function parseNdjson (text: string): unknown[] {
  const values: unknown[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim()
    if (line.length === 0) continue
    try {
      values.push(JSON.parse(line))
    } catch {
      // The parser's own text is left out: it varies by Node version and repeats "not valid JSON".
      throw new PulseError('PULSE_ERR_MALFORMED_BODY', `The NDJSON body's line ${i + 1} must be one JSON value; got ${quoteValue(line)}, which cannot be parsed`)
    }
  }
  return values
}

/** `POST /api/v2/items`: validate the whole batch, then queue it durably and answer 202. */
export default async function ingestRoutes (app: FastifyInstance): Promise<void> {
  app.addContentTypeParser('application/x-ndjson', { parseAs: 'string', bodyLimit: MAX_BODY_BYTES }, (_request, body, done) => {
    try {
      done(null, parseNdjson(body as string))
    } catch (err) {
      done(err as Error, undefined)
    }
  })

  const { config } = app.pulse
  const limits = { maxItems: config.ingestBacklogMaxItems, maxBytes: config.ingestBacklogMaxBytes }
  const producers = new WeakMap<object, Producer>()
  // A producer's own rate (name:key:tickers:rate), counted per producer over every gateway in cluster mode.
  const producerRate = app.hasDecorator('createRateLimit')
    ? app.createRateLimit({ max: (request) => producers.get(request)?.batchesPerMinute ?? 0, timeWindow: 60_000, keyGenerator: (request) => `producer:${producers.get(request)?.name ?? ''}` })
    : undefined

  app.withTypeProvider<TypeBoxTypeProvider>().post('/api/v2/items', {
    bodyLimit: MAX_BODY_BYTES,
    // Before the body is read: an unauthenticated client never gets a 1 MB parse for free.
    onRequest: async (request, reply) => {
      const producer = app.pulse.ingestKeys.identify(bearerToken(request))
      if (producer === undefined) throw new PulseError('PULSE_ERR_UNAUTHORIZED', 'A valid Authorization: Bearer key is required')
      producers.set(request, producer)
      if (producer.batchesPerMinute === undefined || producerRate === undefined) return
      const verdict = await producerRate(request)
      if (verdict.isAllowed || !verdict.isExceeded) return
      reply.header('retry-after', String(verdict.ttlInSeconds))
      throw new PulseError('PULSE_ERR_RATE_LIMITED', `Too many batches from producer ${producer.name}: at most ${producer.batchesPerMinute} a minute`)
    },
    // The batch is validated as a whole below, with per-item details; the schema documents it.
    validatorCompiler: () => (value: unknown) => ({ value }),
    config: { rateLimit: config.rateLimitIngest > 0 ? { max: config.rateLimitIngest, timeWindow: '1 minute' } : false },
    schema: {
      summary: 'Ingest a batch of scored items (JSON array or NDJSON)',
      tags: ['ingest'],
      security: [{ bearer: [] }],
      body: Type.Array(ItemSchema, { minItems: 1, maxItems: MAX_BATCH_ITEMS }),
      response: {
        202: Type.Object({ accepted: Type.Integer() }),
        400: ErrorSchema,
        401: ErrorSchema,
        403: ErrorSchema,
        409: ErrorSchema,
        413: ErrorSchema,
        503: ErrorSchema
      }
    }
  }, async (request, reply) => {
    // Before validation, the costly part: while the fold is behind a refused batch costs little.
    const admitted = admission(app.pulse.queue, limits)
    if (!admitted.admitting) {
      reply.header('retry-after', String(BACKLOG_RETRY_AFTER_S))
      throw new PulseError('PULSE_ERR_BACKLOG_FULL', `Ingest is behind (${admitted.reason ?? 'backlog full'}); nothing of this batch was accepted: retry it after ${BACKLOG_RETRY_AFTER_S} s`)
    }
    const body: unknown = request.body
    if (!Array.isArray(body)) {
      throw new PulseError('PULSE_ERR_VALIDATION', `The body must be an array of items (or NDJSON); got ${quoteValue(body)}`, [{ field: 'body', message: `body must be an array of items; got ${quoteValue(body)}` }])
    }
    if (body.length === 0) throw new PulseError('PULSE_ERR_EMPTY_BATCH')
    if (body.length > MAX_BATCH_ITEMS) throw new PulseError('PULSE_ERR_BATCH_TOO_LARGE', `A batch must hold at most ${MAX_BATCH_ITEMS} items; got ${body.length}`)
    const now = app.pulse.now()
    // Retired tickers pass validation here and are refused below with their own code.
    const catalogue = app.pulse.tickers.current()
    const checked = checkBatch(body, { tickers: { has: (ticker) => catalogue.entry(ticker) !== undefined }, now, scoreText })
    if (!checked.ok) {
      const details = checked.problems.map(({ index, field, message }) => ({ index, field, message }))
      const everyProblemTooOld = checked.problems.every((p) => p.tooOld === true)
      if (everyProblemTooOld) throw new PulseError('PULSE_ERR_ITEM_TOO_OLD', undefined, details)
      throw new PulseError('PULSE_ERR_VALIDATION', `${new Set(details.map((d) => d.index)).size} of ${body.length} items are invalid; nothing was ingested`, details)
    }
    const retired = checked.items.flatMap((item, index) => catalogue.isRetired(item.ticker) ? [{ index, ticker: item.ticker }] : [])
    if (retired.length > 0) {
      const names = [...new Set(retired.map((r) => r.ticker))]
      const details = retired.slice(0, 100).map(({ index, ticker }) => ({ index, field: 'ticker', message: `${ticker} is retired and accepts no more items` }))
      throw new PulseError('PULSE_ERR_TICKER_RETIRED', `${names.slice(0, 10).join(', ')} ${names.length === 1 ? 'is' : 'are'} retired (${retired.length} of ${body.length} items); nothing of this batch was accepted`, details)
    }
    const producer = producers.get(request) as Producer
    const outside = outOfScope(producer, checked.items)
    if (outside.length > 0) {
      const tickers = [...new Set(outside.map((o) => o.ticker))]
      const details = outside.slice(0, 100).map(({ index, ticker }) => ({ index, field: 'ticker', message: `${ticker} is outside the scope of producer ${producer.name}` }))
      throw new PulseError('PULSE_ERR_PRODUCER_SCOPE', `Producer ${producer.name} may not post ${tickers.slice(0, 10).join(', ')} (${outside.length} of ${body.length} items); nothing of this batch was accepted`, details)
    }
    try {
      await app.pulse.queue.enqueue(checked.items, now)
    } catch (err) {
      request.log.error({ err }, 'enqueue failed')
      // With several ingest shards, other shards may hold their part: a retry of the whole batch counts each item once.
      throw new PulseError('PULSE_ERR_UNAVAILABLE', 'The ingest queue is unavailable; retry the whole batch later (no item is counted twice)')
    }
    // The audit line: who posted how much, never the items.
    request.log.info({ audit: 'ingest', producer: producer.name, items: checked.items.length, tickers: new Set(checked.items.map((i) => i.ticker)).size }, 'ingest batch accepted')
    return await reply.code(202).send({ accepted: checked.items.length })
  })

  // HTTP says a known route with the wrong method is 405 with Allow, not 404.
  app.route({
    method: ['GET', 'PUT', 'PATCH', 'DELETE'],
    url: '/api/v2/items',
    schema: { hide: true },
    handler: async (request, reply) => {
      return await reply.code(405).header('allow', 'POST').send(errorBody('PULSE_ERR_METHOD_NOT_ALLOWED', `${request.method} is not allowed on /api/v2/items; use POST`))
    }
  })
}

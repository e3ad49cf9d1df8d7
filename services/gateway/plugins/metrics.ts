import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { PulseMetrics } from '../../metrics.js'
import { requireBearer, SecretSet } from './auth.js'

export interface MetricsPluginOptions {
  metrics: PulseMetrics
  /** `METRICS_TOKEN`: when set, a scrape needs `Authorization: Bearer <token>`. */
  token: string | undefined
}

const INGEST_ROUTE = '/api/v2/items'

function errorCode (payload: unknown): string {
  if (typeof payload !== 'string') return 'unknown'
  try {
    const code = (JSON.parse(payload) as { error?: { code?: unknown } }).error?.code
    return typeof code === 'string' ? code : 'unknown'
  } catch {
    return 'unknown'
  }
}

/**
 * `GET /metrics` (Prometheus text) and the ingest counters: accepted items on each 202,
 * rejected items by the error code the response carries, whichever layer rejected them.
 */
async function metricsPlugin (app: FastifyInstance, options: MetricsPluginOptions): Promise<void> {
  const { metrics } = options
  const token = options.token === undefined ? undefined : new SecretSet([options.token])

  app.addHook('onSend', async (request, reply, payload) => {
    if (request.routeOptions.url !== INGEST_ROUTE) return payload
    const items = Array.isArray(request.body) ? request.body.length : 1
    if (reply.statusCode === 202) metrics.itemsAccepted.inc(items)
    else if (reply.statusCode >= 400) metrics.itemsRejected.inc({ code: errorCode(payload) }, items)
    return payload
  })

  app.get('/metrics', {
    schema: { summary: 'Prometheus metrics (Bearer METRICS_TOKEN when set)', tags: ['operations'] },
    onRequest: async (request) => { if (token !== undefined) requireBearer(token, request) }
  }, async (_request, reply) => {
    return await reply.type(metrics.registry.contentType).send(await metrics.text())
  })
}

/** Metrics endpoint and ingest counters; applies to every route of the app it is registered on. */
export default fp(metricsPlugin, { name: 'pulse-metrics', fastify: '5.x' })

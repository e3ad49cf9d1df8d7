import cors from '@fastify/cors'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions, LogController } from 'fastify'
import { errorBody } from '../../shared/errors.js'
import type { GatewayContext } from './context.js'
import dashboard from './plugins/dashboard.js'
import docs from './plugins/docs.js'
import errorHandler from './plugins/error-handler.js'
import { gatewayAccess } from './access/plugin.js'
import rateLimits from './plugins/rate-limits.js'
import securityHeaders from './plugins/security-headers.js'
import adminTickerRoutes from './routes/admin-tickers.js'
import healthRoutes from './routes/health.js'
import ingestRoutes from './routes/ingest.js'
import streamTicketRoutes from './routes/stream-tickets.js'
import tickerRoutes from './routes/tickers.js'
import timeseriesRoutes from './routes/timeseries.js'
import exportRoutes from './routes/export.js'
import { sseStream, wsStream } from './streaming/plugins.js'

export interface BuildAppOptions {
  /** Pino logger for the gateway; silent when unset. */
  logger?: FastifyServerOptions['loggerInstance'] | undefined
  /** Plugins registered after the core routes (streaming, metrics). */
  plugins?: Array<(app: FastifyInstance) => Promise<void>>
}

/** Builds the gateway's Fastify app: one plugin per feature, all reading `app.pulse`. */
export async function buildApp (context: GatewayContext, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.logger === undefined ? { logger: false } : { loggerInstance: options.logger }),
    // At thousands of requests a second, per-request lines drown the useful ones; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1_048_576,
    // Slow or idle clients may not hold a request open for long.
    requestTimeout: context.config.requestTimeoutMs,
    // Node checks request timeouts only this often (default 30 s), so a slow client could
    // hold a request for twice the timeout; check four times per timeout instead.
    http: { connectionsCheckingInterval: Math.max(250, Math.floor(context.config.requestTimeoutMs / 4)) },
    connectionTimeout: 60_000,
    // Only proxies on this host or a private network may name the client (X-Forwarded-For):
    // a client reaching the gateway directly cannot pick its own rate-limit key.
    trustProxy: ['loopback', 'linklocal', 'uniquelocal'],
    forceCloseConnections: 'idle',
    // Errors raised before routing (a URL with bad percent-encoding) get the Pulse error body too.
    frameworkErrors: (_err, _request, reply: FastifyReply) => {
      reply.code(400).send(errorBody('PULSE_ERR_VALIDATION', 'The URL is not valid: bad percent-encoding'))
    }
  })
  app.decorate('pulse', context)
  // Pulse speaks JSON and NDJSON only; anything else is a 415, not a string to misread.
  app.removeContentTypeParser('text/plain')
  await app.register(errorHandler)
  await app.register(docs)
  const origins = context.config.allowedOrigins
  await app.register(cors, { origin: origins.length === 0 ? true : origins })
  await app.register(securityHeaders)
  await app.register(rateLimits)
  await app.register(gatewayAccess)
  await app.register(healthRoutes)
  await app.register(ingestRoutes)
  await app.register(timeseriesRoutes)
  await app.register(exportRoutes)
  await app.register(tickerRoutes)
  await app.register(adminTickerRoutes)
  await app.register(streamTicketRoutes)
  for (const plugin of options.plugins ?? []) await app.register(plugin)
  await app.register(wsStream)
  await app.register(sseStream)
  await app.register(dashboard)
  return app
}

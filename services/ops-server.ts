import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify'
import type { ReadinessReport } from './gateway/context.js'
import drainPlugin, { type DrainState } from './gateway/plugins/drain.js'
import errorHandler from './gateway/plugins/error-handler.js'
import metricsPlugin from './gateway/plugins/metrics.js'
import type { PulseMetrics } from './metrics.js'
import { isReady } from './readiness.js'

export interface OpsServerOptions {
  metrics: PulseMetrics
  metricsToken: string | undefined
  readiness: () => Promise<ReadinessReport>
  drain: DrainState
  logger: FastifyBaseLogger
}

/**
 * The small HTTP listener of a worker (`ROLE=worker`): `/healthz`, `/readyz` and
 * `/metrics` only, so operators probe and scrape every process the same way.
 */
export async function buildOpsServer (options: OpsServerOptions): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: options.logger, logController: new LogController({ disableRequestLogging: true }), forceCloseConnections: true })
  await app.register(errorHandler)
  await app.register(drainPlugin, { drain: options.drain })
  await app.register(metricsPlugin, { metrics: options.metrics, token: options.metricsToken })
  app.get('/healthz', async () => ({ status: 'ok' as const }))
  app.get('/readyz', async (_request, reply) => {
    const checks = await options.readiness()
    const ready = isReady(checks)
    return await reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks })
  })
  return app
}

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { errorBody } from '../../../shared/errors.js'

/** Shared by the runtime (which starts a drain) and the routes that report it. */
export interface DrainState {
  draining: boolean
}

/** Routes that keep answering during a drain: liveness, readiness (503 with a reason) and scrapes. */
const OPERATIONS = new Set(['/healthz', '/readyz', '/metrics'])

async function drainPlugin (app: FastifyInstance, options: { drain: DrainState }): Promise<void> {
  app.addHook('onRequest', async (request, reply) => {
    if (!options.drain.draining || OPERATIONS.has(request.url.split('?')[0] ?? '')) return
    // `connection: close` moves keep-alive clients off this process with their next request.
    await reply.code(503).header('retry-after', '1').header('connection', 'close')
      .send(errorBody('PULSE_ERR_SHUTTING_DOWN'))
  })
}

/**
 * While the process drains, new requests get 503 `PULSE_ERR_SHUTTING_DOWN` (so clients and
 * load balancers go elsewhere) and `/readyz` fails; requests already running finish.
 */
export default fp(drainPlugin, { name: 'pulse-drain', fastify: '5.x' })

import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { isReady } from '../../readiness.js'

/**
 * `GET /healthz` (the process answers) and `GET /readyz` (hot state, queue and bus answer;
 * an unreachable archive shows as `archive: degraded` and leaves the gateway ready).
 */
export default async function healthRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.get('/healthz', {
    schema: { summary: 'Liveness', tags: ['operations'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } }
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    schema: {
      summary: 'Readiness: each dependency checked with a timeout; the archive is advisory',
      tags: ['operations'],
      response: {
        200: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) }),
        503: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) })
      }
    }
  }, async (_request, reply) => {
    const checks = await app.pulse.readiness()
    const ready = isReady(checks)
    return await reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks })
  })
}

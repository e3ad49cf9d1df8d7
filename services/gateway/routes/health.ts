import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'

/** `GET /healthz` (the process answers) and `GET /readyz` (every dependency answers). */
export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  app.get('/healthz', {
    schema: { summary: 'Liveness', tags: ['operations'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } }
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    schema: {
      summary: 'Readiness: each dependency checked with a timeout',
      tags: ['operations'],
      response: {
        200: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) }),
        503: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) })
      }
    }
  }, async (_request, reply) => {
    const checks = await app.pulse.readiness()
    const ready = Object.values(checks).every((v) => v === 'ok')
    return await reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks })
  })
}

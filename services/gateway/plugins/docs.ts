import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** OpenAPI document generated from the routes' TypeBox schemas, with its UI at `/docs`. */
async function docs (app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: { title: 'Pulse API', version: '2', description: 'Real-time news-sentiment time series at eight resolutions' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
}

export default fp(docs, { name: 'pulse-docs', fastify: '5.x' })

import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { asyncApiDocument } from '../asyncapi.js'

const ASYNCAPI_PATH = '/docs/asyncapi.json'

/**
 * OpenAPI document generated from the routes' TypeBox schemas, with its UI at `/docs`, and
 * the AsyncAPI document of the streams at `/docs/asyncapi.json`.
 */
async function docs (app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Pulse API',
        version: '2',
        description: 'Real-time news-sentiment time series at eight resolutions. ' +
          `The streaming protocols (WebSocket /api/v2/ws, SSE /api/v2/stream), their messages and events are described by the AsyncAPI document at [${ASYNCAPI_PATH}](${ASYNCAPI_PATH}).`
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }
    },
    // @fastify/websocket hides WebSocket routes from the document; the upgrade is listed here.
    transformObject: (documentObject) => {
      if (!('openapiObject' in documentObject)) return documentObject.swaggerObject
      const { openapiObject } = documentObject
      openapiObject.paths = {
        ...openapiObject.paths,
        '/api/v2/ws': {
          get: {
            summary: 'WebSocket stream of bucket events',
            description: `Upgrade to a WebSocket. Messages and events: ${ASYNCAPI_PATH}.`,
            tags: ['streaming'],
            parameters: ['tickers', 'resolutions', 'since', 'token', 'batch'].map((name) => ({ name, in: 'query', required: false, schema: { type: 'string' } })),
            responses: {
              101: { description: 'Switching Protocols: the WebSocket is open' },
              403: { description: 'PULSE_ERR_FORBIDDEN_ORIGIN' },
              503: { description: 'PULSE_ERR_TOO_MANY_CONNECTIONS or PULSE_ERR_SHUTTING_DOWN, with Retry-After' }
            }
          }
        }
      }
      return openapiObject
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  const document = asyncApiDocument()
  app.get(ASYNCAPI_PATH, {
    schema: { summary: 'AsyncAPI 3 document of the WebSocket and SSE streams', tags: ['docs'] }
  }, async (request) => {
    return request.headers.host === undefined ? document : asyncApiDocument(request.headers.host)
  })
}

export default fp(docs, { name: 'pulse-docs', fastify: '5.x' })

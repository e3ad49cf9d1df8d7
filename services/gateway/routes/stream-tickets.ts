import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { PulseError } from '../../../shared/errors.js'
import { bearerOf } from '../access/plugin.js'
import { ErrorSchema } from '../schemas.js'

/**
 * `POST /api/v2/stream/tickets`: trades the reader's `Authorization: Bearer` token for a
 * stream ticket, for a plain `EventSource` (which cannot send headers) to open
 * `/api/v2/stream?ticket=…` without a long-lived secret in its URL. A ticket is valid
 * once, for 30 s, on any gateway of the deployment, and carries the token's subject,
 * entitlement and expiry.
 */
export default async function streamTicketRoutes (app: FastifyInstance): Promise<void> {
  const { config } = app.pulse
  app.withTypeProvider<TypeBoxTypeProvider>().post('/api/v2/stream/tickets', {
    config: { rateLimit: config.rateLimitRead > 0 ? { max: config.rateLimitRead, timeWindow: '1 minute' } : false },
    schema: {
      summary: 'A single-use, short-lived ticket for opening an event stream with EventSource',
      tags: ['streaming'],
      security: [{ bearer: [] }],
      response: {
        201: Type.Object({
          ticket: Type.String({ description: 'put it in the stream URL as ?ticket=' }),
          expires_at: Type.String({ description: 'ISO 8601; unused after it, the ticket is void' })
        }),
        401: ErrorSchema
      }
    }
  }, async (request, reply) => {
    const reader = await app.access.auth.authenticate(bearerOf(request.headers.authorization))
    let issued
    try {
      issued = await app.access.tickets.issue(reader, app.pulse.now())
    } catch (err) {
      request.log.warn({ err }, 'stream ticket store did not answer')
      throw new PulseError('PULSE_ERR_UNAVAILABLE', 'Stream tickets cannot be issued now; retry later')
    }
    return await reply.code(201).header('cache-control', 'no-store').send({ ticket: issued.ticket, expires_at: new Date(issued.expiresAt).toISOString() })
  })
}

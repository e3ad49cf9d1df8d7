import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { closeConnection, openRedis } from '../../../shared/adapters/redis/connection.js'
import { PulseError } from '../../../shared/errors.js'
import { type Reader, ReaderAuth } from './reader-auth.js'
import { MemoryTicketStore, RedisTicketStore, type TicketStore } from './stream-tickets.js'
import { SubjectLimits } from './subject-limits.js'

/*
 * The gateway's access core (`app.access`): reader authentication, stream tickets and
 * per-subject limits, shared by the HTTP routes and both stream transports.
 */

/** What a stream request offers as a credential, whatever the engine. */
export interface StreamCredentials {
  authorization: string | undefined
  /** `?token=`: READ_TOKEN or a JWT, for clients that cannot set headers. */
  queryToken: string | undefined
  /** `?ticket=`: a stream ticket from `POST /api/v2/stream/tickets`. */
  ticket: string | undefined
}

/** The gateway's access core. */
export interface GatewayAccess {
  auth: ReaderAuth
  tickets: TicketStore
  limits: SubjectLimits
  /** The same limits per client IP (`IP_MAX_CONNECTIONS`, `IP_MAX_SUBSCRIPTIONS`). */
  ipLimits: SubjectLimits
  /** The reader of a stream request: a ticket, else a bearer token, else `?token=`. */
  streamReader: (credentials: StreamCredentials) => Promise<Reader>
  /** Counts one history read against the reader's subject; throws 429 past the limit. */
  countRead: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    access: GatewayAccess
  }
  interface FastifyRequest {
    /** The authenticated reader of a read route (set by its `readAccess` hook). */
    reader?: Reader
  }
}

/** The token of an `Authorization: Bearer <token>` header value. */
export function bearerOf (header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1]
}

async function accessPlugin (app: FastifyInstance): Promise<void> {
  const { config, now } = app.pulse
  const auth = new ReaderAuth(config, (err) => app.log.warn({ err }, 'JWKS fetch failed; the keys held so far stay in use'))
  app.addHook('onClose', async () => auth.close())
  let tickets: TicketStore = new MemoryTicketStore()
  if (config.redisUrl !== undefined) {
    const redis = openRedis({ url: config.redisUrl, cluster: config.redisCluster }, { connectTimeout: 1000, maxRetriesPerRequest: 1 })
    redis.on('error', (err: unknown) => app.log.debug({ err }, 'stream-ticket redis'))
    app.addHook('onClose', async () => await closeConnection(redis))
    tickets = new RedisTicketStore(redis, `pulse:${config.env}:ticket:`)
  }
  const subjectRate = config.rateLimitReadSubject > 0 && auth.jwt && app.hasDecorator('createRateLimit')
    ? app.createRateLimit({ max: config.rateLimitReadSubject, timeWindow: 60_000, keyGenerator: (request) => `subject:${request.reader?.subject ?? ''}` })
    : undefined

  app.decorateRequest('reader', undefined)
  app.decorate('access', {
    auth,
    tickets,
    limits: new SubjectLimits(config.subjectMaxConnections, config.subjectMaxSubscriptions),
    ipLimits: new SubjectLimits(config.ipMaxConnections, config.ipMaxSubscriptions),
    streamReader: async (credentials: StreamCredentials): Promise<Reader> => {
      if (credentials.ticket !== undefined) {
        let reader: Reader | undefined
        try {
          reader = await tickets.redeem(credentials.ticket, now())
        } catch (err) {
          app.log.warn({ err }, 'stream ticket store did not answer')
          throw new PulseError('PULSE_ERR_UNAVAILABLE', 'Stream tickets cannot be checked now; retry later')
        }
        if (reader === undefined) throw new PulseError('PULSE_ERR_UNAUTHORIZED', 'The stream ticket is unknown, used or expired: tickets are valid once, for 30 s')
        if (reader.expiresAt !== undefined && reader.expiresAt <= now()) throw new PulseError('PULSE_ERR_TOKEN_EXPIRED')
        return reader
      }
      return await auth.authenticate(bearerOf(credentials.authorization) ?? credentials.queryToken)
    },
    countRead: async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      if (subjectRate === undefined || request.reader?.subject === undefined) return
      const verdict = await subjectRate(request)
      if (verdict.isAllowed || !verdict.isExceeded) return
      reply.header('retry-after', String(verdict.ttlInSeconds))
      throw new PulseError('PULSE_ERR_RATE_LIMITED', `Too many history reads for this token's subject: at most ${verdict.max} a minute`)
    }
  } satisfies GatewayAccess)
}

/** Registers `app.access`; the read routes and streams register it when it is missing. */
export const gatewayAccess = fp(accessPlugin, { name: 'pulse-access', fastify: '5.x' })

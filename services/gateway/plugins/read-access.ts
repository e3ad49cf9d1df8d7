import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { PulseError } from '../../../shared/errors.js'
import type { Resolution } from '../../../shared/timeseries/resolutions.js'
import { bearerOf } from '../access/plugin.js'
import { notEntitled } from '../access/stream-access.js'

/**
 * The `onRequest` guard of the read endpoints (history, tickers). Open reads (no
 * `READ_TOKEN`, no JWT settings) let everyone in; otherwise a request needs
 * `Authorization: Bearer <token>` or `?token=` (for clients that cannot set headers):
 * READ_TOKEN, or a JWT whose claims then bound what it reads (401 otherwise). The reader
 * is left on `request.reader`, and its subject's history reads are counted.
 */
export function readAccess (app: FastifyInstance): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (request, reply) => {
    const query = request.query as { token?: unknown } | undefined
    const fromQuery = typeof query?.token === 'string' ? query.token : undefined
    request.reader = await app.access.auth.authenticate(bearerOf(request.headers.authorization) ?? fromQuery)
    await app.access.countRead(request, reply)
  }
}

/** Throws 403 `PULSE_ERR_NOT_ENTITLED` unless the request's reader may read `ticker` at `resolution`. */
export function requireEntitled (request: FastifyRequest, ticker: string, resolution: Resolution): void {
  const reader = request.reader
  if (reader !== undefined && !reader.entitlement.allows(ticker, resolution)) {
    throw new PulseError('PULSE_ERR_NOT_ENTITLED', notEntitled([`${ticker}#${resolution}`]).message)
  }
}

import type { FastifyRequest } from 'fastify'
import { PulseError } from '../../../shared/errors.js'
import { bearerToken, SecretSet } from './auth.js'

/**
 * The `onRequest` guard of the read endpoints (history, tickers). Without `READ_TOKEN` it
 * lets everyone in; with it, a request needs `Authorization: Bearer <token>` or `?token=`
 * (for clients that cannot set headers), compared in constant time, else 401.
 */
export function readAccess (readToken: string | undefined): (request: FastifyRequest) => Promise<void> {
  if (readToken === undefined) return async () => {}
  const secrets = new SecretSet([readToken])
  return async (request) => {
    const query = request.query as { token?: unknown } | undefined
    const fromQuery = typeof query?.token === 'string' ? query.token : undefined
    if (!secrets.matches(bearerToken(request) ?? fromQuery)) {
      throw new PulseError('PULSE_ERR_UNAUTHORIZED', 'A valid READ_TOKEN is required (Authorization: Bearer, or ?token=)')
    }
  }
}

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errorBody } from '../../../shared/errors.js'
import type { SecretSet } from '../plugins/auth.js'
import { checkStreamAccess } from './access.js'
import { RETRY_AFTER_SECONDS } from './limits.js'

const releases = new WeakMap<FastifyRequest, () => void>()

/** Checks access and takes a connection slot before the upgrade; answers 401/403/503 otherwise. */
export function admitStream (app: FastifyInstance, readToken: SecretSet | undefined, websocketUpgrade: boolean) {
  return async (request: FastifyRequest<{ Querystring: { token?: string } }>, reply: FastifyReply): Promise<void> => {
    const code = checkStreamAccess({
      authorization: request.headers.authorization,
      origin: request.headers.origin,
      queryToken: request.query.token
    }, readToken, app.pulse.config.allowedOrigins, websocketUpgrade)
    if (code !== undefined) {
      await reply.code(code === 'PULSE_ERR_UNAUTHORIZED' ? 401 : 403).send(errorBody(code))
      return
    }
    const hub = app.streaming
    const release = hub.shuttingDown ? undefined : hub.limiter.tryAcquire()
    if (release === undefined) {
      await reply.code(503).header('retry-after', String(RETRY_AFTER_SECONDS))
        .send(errorBody(hub.shuttingDown ? 'PULSE_ERR_SHUTTING_DOWN' : 'PULSE_ERR_TOO_MANY_CONNECTIONS'))
      return
    }
    // The slot is held by the TCP connection, so it comes back however the stream ends.
    request.raw.socket.once('close', release)
    releases.set(request, release)
  }
}

/** The slot `admitStream` took for this request. */
export function releaseOf (request: FastifyRequest): () => void {
  return releases.get(request) ?? (() => {})
}

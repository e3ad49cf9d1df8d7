import type { FastifyInstance } from 'fastify'
import type { ErrorCode } from '../../../shared/errors.js'
import { SecretSet } from '../plugins/auth.js'
import { checkStreamAccess } from '../streaming/access.js'
import type { ChannelHub } from '../streaming/channel-hub.js'
import { RETRY_AFTER_SECONDS } from '../streaming/limits.js'
import type { EdgeRequest } from './edge-request.js'

/** What the uWS stream routes share: the Fastify app's hub and settings. */
export interface EdgeContext {
  app: FastifyInstance
  hub: ChannelHub
  /** Configured tickers. */
  known: ReadonlySet<string>
  readToken: SecretSet | undefined
}

/** The edge context of an app whose streaming hub is registered. */
export function edgeContext (app: FastifyInstance): EdgeContext {
  const { config } = app.pulse
  return {
    app,
    hub: app.streaming,
    known: new Set(config.tickers),
    readToken: config.readToken === undefined ? undefined : new SecretSet([config.readToken])
  }
}

/** A stream refused before it starts: the catalogue code and any extra headers. */
export interface Refusal {
  code: ErrorCode
  headers: Record<string, string>
}

/**
 * The admission rules of the Fastify engine (`streaming/admission.ts`) for a uWS request:
 * access first (401/403), then a connection slot (503 with `Retry-After`). On success the
 * caller owns the slot and must release it when the stream ends.
 */
export function admit (context: EdgeContext, request: EdgeRequest, websocketUpgrade: boolean): { release: () => void } | Refusal {
  const denied = checkStreamAccess({
    authorization: request.headers.authorization,
    origin: request.headers.origin,
    queryToken: request.query.get('token') ?? undefined
  }, context.readToken, context.app.pulse.config.allowedOrigins, websocketUpgrade)
  if (denied !== undefined) return { code: denied, headers: {} }
  const release = context.hub.shuttingDown ? undefined : context.hub.limiter.tryAcquire()
  if (release === undefined) {
    return {
      code: context.hub.shuttingDown ? 'PULSE_ERR_SHUTTING_DOWN' : 'PULSE_ERR_TOO_MANY_CONNECTIONS',
      headers: { 'retry-after': String(RETRY_AFTER_SECONDS) }
    }
  }
  return { release }
}

import { ERRORS, PulseError } from '../../../shared/errors.js'
import type { ChannelHub } from '../streaming/channel-hub.js'
import type { ConnectionActor } from '../streaming/connection-actor.js'
import { renderEvent } from '../streaming/protocol.js'
import type { StreamAccess } from './stream-access.js'

/** What a WebSocket `refresh` acts on. */
export interface RefreshSession {
  access: StreamAccess | undefined
  actor: ConnectionActor
  hub: ChannelHub
}

/**
 * `{"op":"refresh","token":"…"}`: replaces the connection's JWT before its `exp`. A token
 * that does not verify (or names another subject) is refused with an `error` and the old
 * one stays in force until its own `exp`. A narrower token drops the subscriptions it no
 * longer covers, named by an `error` with `series`; the reply is `refreshed`.
 */
export async function refreshSession (session: RefreshSession, token: string): Promise<void> {
  const { access, actor, hub } = session
  const fail = (code: keyof typeof ERRORS, message?: string): void => {
    actor.reply(renderEvent('error', { code, message: message ?? ERRORS[code].message }))
  }
  if (access?.auth.jwt !== true) {
    fail('PULSE_ERR_BAD_MESSAGE', `${ERRORS.PULSE_ERR_BAD_MESSAGE.message}: refresh applies where readers use JWTs (JWT_SECRET or JWKS_URL)`)
    return
  }
  let outcome: Awaited<ReturnType<StreamAccess['refresh']>>
  try {
    outcome = await access.refresh(token, actor)
  } catch (err) {
    if (err instanceof PulseError) fail(err.code, `The refresh was refused, the current token stays in force until its exp: ${err.message}`)
    else fail('PULSE_ERR_INTERNAL')
    return
  }
  if (outcome.dropped.length > 0) {
    hub.leave(actor, outcome.dropped)
    actor.reply(renderEvent('error', {
      code: 'PULSE_ERR_NOT_ENTITLED',
      message: `The refreshed token no longer covers ${outcome.dropped.length} series; they were unsubscribed`,
      series: outcome.dropped
    }))
  }
  const expiresAt = outcome.expiresAt === undefined ? '' : new Date(outcome.expiresAt).toISOString()
  actor.reply(renderEvent('refreshed', { expires_at: expiresAt, dropped: outcome.dropped }))
}

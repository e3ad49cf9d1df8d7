import { ERRORS, PulseError } from '../../../shared/errors.js'
import type { SeriesKey } from '../../../shared/timeseries/keys.js'
import type { ConnectionActor } from '../streaming/connection-actor.js'
import { renderEvent } from '../streaming/protocol.js'
import type { GatewayAccess, StreamCredentials } from './plugin.js'
import type { Reader } from './reader-auth.js'
import { notEntitled, StreamAccess } from './stream-access.js'

/*
 * Access at the start of a stream, the same for WebSocket and SSE: who the reader is, its
 * subject's stream limit, the series of an event stream it may see, and the expiry of the
 * open stream.
 */

/**
 * The reader of a new stream, checked before a connection slot is taken: rejects with
 * 401 for a missing or bad credential, 429 when the subject or the client IP holds its
 * limit of streams.
 */
export async function admitReader (access: GatewayAccess, credentials: StreamCredentials, ip: string): Promise<Reader> {
  const reader = await access.streamReader(credentials)
  if (!access.ipLimits.mayOpen(ip)) {
    throw new PulseError('PULSE_ERR_RATE_LIMITED', `This client address already holds ${access.ipLimits.maxConnections} streams open on this gateway, its limit`)
  }
  if (!access.limits.mayOpen(reader.subject)) {
    throw new PulseError('PULSE_ERR_RATE_LIMITED', `The token's subject already holds ${access.limits.maxConnections} streams open on this gateway, its limit`)
  }
  return reader
}

/**
 * The series of an event stream its reader may see: throws 403 when it may see none of
 * them; otherwise the refused ones are named by {@link reportRefused} once it is open.
 */
export function entitledSeries (reader: Reader, series: readonly SeriesKey[]): { allowed: SeriesKey[], denied: SeriesKey[] } {
  const split = reader.entitlement.split(series)
  if (split.allowed.length === 0) throw new PulseError('PULSE_ERR_NOT_ENTITLED', notEntitled(split.denied).message)
  return split
}

/** Sends the `error` event that names series refused for the entitlement (the rest stand). */
export function reportRefused (actor: ConnectionActor, denied: readonly SeriesKey[]): void {
  if (denied.length === 0) return
  const refusal = notEntitled([...denied])
  actor.reply(renderEvent('error', { code: refusal.code, message: refusal.message, series: refusal.series }))
}

/**
 * The access of an open stream: counted against its subject and its client IP, and closed at the token's
 * `exp` (after an `error` event saying why) unless a refresh comes first.
 */
export function openStreamAccess (access: GatewayAccess, reader: Reader, actor: ConnectionActor, now: () => number, ip: string): StreamAccess {
  const streamAccess = new StreamAccess(access.auth, reader, access.limits, now, () => {
    actor.reply(renderEvent('error', { code: 'PULSE_ERR_TOKEN_EXPIRED', message: `${ERRORS.PULSE_ERR_TOKEN_EXPIRED.message}: the stream closes` }))
    actor.close('expired')
  }, { ip, limits: access.ipLimits })
  streamAccess.attach(actor)
  return streamAccess
}

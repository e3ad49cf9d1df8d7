import type { ErrorCode } from '../../../shared/errors.js'
import type { SecretSet } from '../plugins/auth.js'

/*
 * The admission of a new stream, the same on both engines: read access (token, Origin) and
 * a connection slot.
 */

/**
 * Counts open streams (WebSocket and SSE together) against `MAX_CONNECTIONS`. A slot is
 * taken before the upgrade or the SSE response starts and given back when the socket closes.
 */
export class ConnectionLimiter {
  #count = 0

  constructor (readonly max: number) {}

  get count (): number {
    return this.#count
  }

  /** Takes a slot; undefined at the limit. The returned release is idempotent. */
  tryAcquire (): (() => void) | undefined {
    if (this.#count >= this.max) return undefined
    this.#count++
    let released = false
    return () => {
      if (released) return
      released = true
      this.#count--
    }
  }
}

/** What an access check needs from a request, whatever the engine. */
export interface AccessRequest {
  authorization: string | undefined
  origin: string | undefined
  /** `?token=`, for EventSource, which cannot set headers. */
  queryToken: string | undefined
}

/**
 * Read access to streams: with `READ_TOKEN` set, a bearer token or `?token=` must match.
 * For WebSockets, a browser's `Origin` must be allowed when `ALLOWED_ORIGINS` is set;
 * clients without an Origin are not browsers, so cross-site hijacking does not apply.
 */
export function checkStreamAccess (request: AccessRequest, readToken: SecretSet | undefined, allowedOrigins: readonly string[], websocket: boolean): ErrorCode | undefined {
  if (readToken !== undefined) {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.authorization ?? '')?.[1]
    if (!readToken.matches(bearer ?? request.queryToken)) return 'PULSE_ERR_UNAUTHORIZED'
  }
  if (websocket && allowedOrigins.length > 0 && request.origin !== undefined && !allowedOrigins.includes(request.origin)) {
    return 'PULSE_ERR_FORBIDDEN_ORIGIN'
  }
  return undefined
}

/** A stream refused before it starts: the catalogue code and any extra headers. */
export interface Refusal {
  code: ErrorCode
  headers: Record<string, string>
}

import type { ErrorCode } from './types.js'

/**
 * A refusal from Pulse or a limit of its protocol, with the catalogue code the gateway
 * uses for it (`PULSE_ERR_*`, see docs/api.md's error codes): a subscription over the
 * gateway's limit is `PULSE_ERR_TOO_MANY_SUBSCRIPTIONS`, a refused token
 * `PULSE_ERR_UNAUTHORIZED`, a full gateway `PULSE_ERR_TOO_MANY_CONNECTIONS`, messages past
 * the budget `PULSE_ERR_FLOOD`.
 */
export class PulseClientError extends Error {
  override readonly name = 'PulseClientError'
  constructor (readonly code: ErrorCode, message: string, readonly status?: number) {
    super(message)
  }
}

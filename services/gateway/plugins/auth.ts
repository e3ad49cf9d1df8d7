import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { PulseError } from '../../../shared/errors.js'

function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/**
 * A set of accepted secrets compared in constant time: every key is checked (no early
 * exit), against fixed-length digests, so timing reveals neither which key nor how much
 * of it matched. Several keys allow rotation.
 */
export class SecretSet {
  readonly #digests: Buffer[]

  constructor (secrets: readonly string[]) {
    this.#digests = secrets.map(digest)
  }

  get size (): number {
    return this.#digests.length
  }

  matches (candidate: string | undefined): boolean {
    if (candidate === undefined) return false
    const given = digest(candidate)
    let matched = false
    for (const known of this.#digests) {
      if (timingSafeEqual(known, given)) matched = true
    }
    return matched
  }
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header === undefined) return undefined
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match?.[1]
}

/** Rejects with 401 unless the request carries one of the secrets as a bearer token. */
export function requireBearer (secrets: SecretSet, request: FastifyRequest): void {
  if (!secrets.matches(bearerToken(request))) {
    throw new PulseError('PULSE_ERR_UNAUTHORIZED', 'A valid Authorization: Bearer key is required')
  }
}

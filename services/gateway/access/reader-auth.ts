import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTVerifyGetKey } from 'jose'
import type { Config } from '../../../shared/config/config.js'
import { PulseError } from '../../../shared/errors.js'
import { SecretSet } from '../plugins/auth.js'
import { Entitlement, EntitlementClaimError } from './entitlement.js'

/*
 * Who is reading: a reader's credential (a JWT, READ_TOKEN, or nothing where reads are
 * open) checked once, turned into a subject, an entitlement and an expiry.
 */

/** A token longer than this is refused before it is parsed. */
export const MAX_TOKEN_BYTES = 8192

/** Asymmetric algorithms accepted from `JWKS_URL`; HS256 only with `JWT_SECRET`. `none` never. */
const JWKS_ALGORITHMS = ['RS256', 'ES256']

/** Seconds of clock difference forgiven on `exp` and `nbf`. */
const CLOCK_TOLERANCE_S = 5

/** How long one JWKS fetch may take before the token that needed it fails. */
const JWKS_TIMEOUT_MS = 2000

/** An authenticated reader. */
export interface Reader {
  /** The JWT's `sub`; undefined for READ_TOKEN and open reads. */
  subject: string | undefined
  entitlement: Entitlement
  /** When the credential ends (epoch ms), from `exp`; undefined: never. */
  expiresAt: number | undefined
}

/** Open reads, and READ_TOKEN: everything, for ever. */
const EVERYONE: Reader = { subject: undefined, entitlement: Entitlement.everything, expiresAt: undefined }

function unauthorized (message: string): PulseError {
  return new PulseError('PULSE_ERR_UNAUTHORIZED', message)
}

/**
 * Checks reader credentials. With neither `READ_TOKEN` nor JWT settings reads are open;
 * with `READ_TOKEN` that token reads everything; with `JWT_SECRET` (HS256) and/or
 * `JWKS_URL` (RS256/ES256) a JWT reads what its claims say (READ_TOKEN, if also set, still
 * reads everything). Every refusal is a {@link PulseError}: 401 `PULSE_ERR_UNAUTHORIZED`,
 * or `PULSE_ERR_TOKEN_EXPIRED` for a token past its `exp`.
 */
export class ReaderAuth {
  readonly #readToken: SecretSet | undefined
  readonly #secret: Uint8Array | undefined
  readonly #jwks: (JWTVerifyGetKey & { reload: () => Promise<void> }) | undefined
  readonly #issuer: string | undefined
  readonly #audience: string | undefined
  readonly #timer: NodeJS.Timeout | undefined

  constructor (config: Pick<Config, 'readToken' | 'jwt' | 'jwksRefreshMs' | 'jwksCooldownMs'>, onJwksError: (err: unknown) => void = () => {}) {
    this.#readToken = config.readToken === undefined ? undefined : new SecretSet([config.readToken])
    const jwt = config.jwt
    this.#secret = jwt?.secret === undefined ? undefined : new TextEncoder().encode(jwt.secret)
    this.#issuer = jwt?.issuer
    this.#audience = jwt?.audience
    if (jwt?.jwksUrl !== undefined) {
      // Keys stay until a refetch succeeds: a JWKS server that is down or slow does not
      // stop tokens signed with known keys; an unknown `kid` triggers a fetch (at most one
      // per cooldown) and fails closed if it brings no such key.
      const jwks = createRemoteJWKSet(new URL(jwt.jwksUrl), { cacheMaxAge: Infinity, cooldownDuration: config.jwksCooldownMs, timeoutDuration: JWKS_TIMEOUT_MS })
      this.#jwks = jwks
      jwks.reload().catch(onJwksError)
      this.#timer = setInterval(() => { jwks.reload().catch(onJwksError) }, config.jwksRefreshMs)
      this.#timer.unref()
    }
  }

  /** Whether reads need a credential at all. */
  get required (): boolean {
    return this.#readToken !== undefined || this.jwt
  }

  /** Whether JWTs are accepted (and so expiry and entitlements apply). */
  get jwt (): boolean {
    return this.#secret !== undefined || this.#jwks !== undefined
  }

  /** Checks `token` (undefined: none given); resolves with the reader or rejects with a catalogue error. */
  async authenticate (token: string | undefined): Promise<Reader> {
    if (!this.required) return EVERYONE
    if (token === undefined || token.length === 0) throw unauthorized('A token is required: Authorization: Bearer <token>')
    if (token.length > MAX_TOKEN_BYTES) throw unauthorized(`The token is longer than ${MAX_TOKEN_BYTES} bytes`)
    if (this.#readToken?.matches(token) === true) return EVERYONE
    if (!this.jwt) throw unauthorized('A valid READ_TOKEN is required (Authorization: Bearer)')
    return await this.#verifyJwt(token)
  }

  /** Stops the background JWKS refetch. */
  close (): void {
    clearInterval(this.#timer)
  }

  async #verifyJwt (token: string): Promise<Reader> {
    let alg: string | undefined
    try {
      alg = decodeProtectedHeader(token).alg
    } catch {
      throw unauthorized('The token is not a JWT')
    }
    const options = {
      clockTolerance: CLOCK_TOLERANCE_S,
      ...(this.#issuer === undefined ? {} : { issuer: this.#issuer }),
      ...(this.#audience === undefined ? {} : { audience: this.#audience })
    }
    let payload: Record<string, unknown>
    try {
      if (alg === 'HS256' && this.#secret !== undefined) {
        payload = (await jwtVerify(token, this.#secret, { ...options, algorithms: ['HS256'] })).payload
      } else if (alg !== undefined && JWKS_ALGORITHMS.includes(alg) && this.#jwks !== undefined) {
        payload = (await jwtVerify(token, this.#jwks, { ...options, algorithms: JWKS_ALGORITHMS })).payload
      } else {
        throw unauthorized(`The token's algorithm ${JSON.stringify(String(alg).slice(0, 16))} is not accepted`)
      }
    } catch (err) {
      throw this.#refusal(err)
    }
    if (typeof payload.exp !== 'number') throw unauthorized('The token has no exp claim: reader tokens must expire')
    let entitlement: Entitlement
    try {
      entitlement = Entitlement.fromClaims(payload)
    } catch (err) {
      if (err instanceof EntitlementClaimError) throw unauthorized(`The token's claims are not valid: ${err.message}`)
      throw err
    }
    return { subject: typeof payload.sub === 'string' ? payload.sub.slice(0, 256) : undefined, entitlement, expiresAt: payload.exp * 1000 }
  }

  #refusal (err: unknown): PulseError {
    if (err instanceof PulseError) return err
    if (err instanceof errors.JWTExpired) return new PulseError('PULSE_ERR_TOKEN_EXPIRED')
    if (err instanceof errors.JWTClaimValidationFailed) {
      if (err.claim === 'nbf') return unauthorized('The token is not valid yet (nbf)')
      return unauthorized(`The token is not valid: its ${err.claim} claim ${err.reason === 'check_failed' ? 'does not match' : err.reason}`)
    }
    if (err instanceof errors.JWSSignatureVerificationFailed) return unauthorized('The token signature is not valid')
    if (err instanceof errors.JWKSNoMatchingKey) return unauthorized('The token was signed with a key the JWKS does not hold (unknown kid)')
    if (err instanceof errors.JWKSTimeout || err instanceof errors.JOSEError) return unauthorized(`The token cannot be verified: ${err.code}`)
    return unauthorized('The token cannot be verified')
  }
}

/*
 * Refreshing a reader JWT on a live WebSocket: the gateway closes a connection at its
 * token's `exp` (close code 4001) unless the client sends `{"op":"refresh"}` with a new
 * token first. The SDK reads `exp` (without verifying: that is the gateway's job) and asks
 * its token supplier for a new token a little before.
 */

/** Shortest and longest lead before `exp` at which the SDK refreshes. */
const MIN_LEAD_MS = 1000
const MAX_LEAD_MS = 60_000

function base64UrlDecode (text: string): string {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/')
  return atob(base64 + '='.repeat((4 - base64.length % 4) % 4))
}

/** A JWT's `exp` in epoch ms; undefined when the token is not a JWT or has none. */
export function tokenExpiry (token: string | undefined): number | undefined {
  const payload = token?.split('.')[1]
  if (payload === undefined) return undefined
  try {
    const exp = (JSON.parse(base64UrlDecode(payload)) as { exp?: unknown }).exp
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined
  } catch {
    return undefined
  }
}

/** When to refresh a token expiring at `expiresAt`: a fifth of its remaining life early, 1–60 s. */
export function refreshAt (expiresAt: number, now: number): number {
  const lead = Math.min(MAX_LEAD_MS, Math.max(MIN_LEAD_MS, (expiresAt - now) / 5))
  return expiresAt - lead
}

/**
 * Keeps one connection's token fresh: `arm` with the token the connection holds; before its
 * `exp` the supplier is asked for a new one, which `send` puts on the connection, and the
 * refresher arms itself with it.
 */
export class TokenRefresher {
  #timer: ReturnType<typeof setTimeout> | undefined
  #generation = 0

  constructor (
    readonly supply: () => Promise<string | undefined>,
    readonly send: (token: string) => void
  ) {}

  arm (token: string | undefined): void {
    this.stop()
    const expiresAt = tokenExpiry(token)
    if (expiresAt === undefined) return
    const generation = this.#generation
    const delay = Math.max(0, refreshAt(expiresAt, Date.now()) - Date.now())
    this.#timer = setTimeout(() => {
      this.supply().then((next) => {
        if (generation !== this.#generation || next === undefined || next === token) return
        this.send(next)
        this.arm(next)
      }, () => {})
    }, Math.min(delay, 2 ** 31 - 1))
  }

  stop (): void {
    this.#generation++
    clearTimeout(this.#timer)
    this.#timer = undefined
  }
}

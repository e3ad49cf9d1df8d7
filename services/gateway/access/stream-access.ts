import { ERRORS, type ErrorCode, PulseError } from '../../../shared/errors.js'
import type { SeriesKey } from '../../../shared/timeseries/keys.js'
import type { Resolution } from '../../../shared/timeseries/resolutions.js'
import type { ReaderAuth, Reader } from './reader-auth.js'
import type { SubjectLimits } from './subject-limits.js'

/*
 * The access of one open stream: its reader's entitlement applied to every subscription
 * and snapshot, the subject's subscription limit, the token's expiry, and the WebSocket
 * `refresh` that replaces the token on the live connection.
 */

/** Longest single timer Node keeps (about 24.8 days); a later `exp` is re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** A refusal that names the series it concerns: the rest of the request stands. */
export interface SeriesRefusal {
  code: ErrorCode
  message: string
  /** `ticker#resolution` of each refused series. */
  series: SeriesKey[]
}

/** What a subscribe may do: the series it may add, and what is refused. */
export interface SubscribeVerdict {
  allowed: SeriesKey[]
  /** Series outside the entitlement (the rest are subscribed). */
  notEntitled?: SeriesRefusal
  /** The whole request refused (the subject's subscription limit). */
  refused?: { code: ErrorCode, message: string }
}

/** The parts of a connection that access needs. */
export interface AccessConnection {
  readonly subscriptions: ReadonlySet<SeriesKey>
}

/** Renders the series of a refusal for a message: `AAPL#1m, MSFT#1h`, at most ten of them. */
function listSeries (series: readonly SeriesKey[]): string {
  return series.length <= 10 ? series.join(', ') : `${series.slice(0, 10).join(', ')} and ${series.length - 10} more`
}

/** The `PULSE_ERR_NOT_ENTITLED` refusal of `series`. */
export function notEntitled (series: SeriesKey[]): SeriesRefusal {
  return { code: 'PULSE_ERR_NOT_ENTITLED', message: `${ERRORS.PULSE_ERR_NOT_ENTITLED.message}: ${listSeries(series)}`, series }
}

/**
 * One stream's access. Created once the stream's reader is known; `close` stops its
 * expiry timer. `onExpire` runs when the token reaches `exp` without a refresh.
 */
export class StreamAccess {
  #reader: Reader
  #timer: NodeJS.Timeout | undefined
  #forget: () => void = () => {}
  #forgetIp: () => void = () => {}

  constructor (
    readonly auth: ReaderAuth,
    reader: Reader,
    readonly limits: SubjectLimits,
    readonly now: () => number,
    readonly onExpire: () => void,
    /** The client's IP and the per-IP limits, when they apply. */
    readonly byIp?: { ip: string, limits: SubjectLimits }
  ) {
    this.#reader = reader
    this.#arm()
  }

  get reader (): Reader {
    return this.#reader
  }

  /** Counts `connection` against its subject's limits until {@link StreamAccess.close}. */
  attach (connection: AccessConnection): void {
    this.#forget = this.limits.opened(this.#reader.subject, connection)
    if (this.byIp !== undefined) this.#forgetIp = this.byIp.limits.opened(this.byIp.ip, connection)
  }

  /** Splits a subscription into what the reader may watch and what it may not. */
  subscribe (series: readonly SeriesKey[], connection: AccessConnection): SubscribeVerdict {
    const { allowed, denied } = this.#reader.entitlement.split(series)
    const added = allowed.filter((key) => !connection.subscriptions.has(key)).length
    if (!this.limits.mayWatch(this.#reader.subject, added)) {
      const watching = this.#reader.subject === undefined ? 0 : this.limits.watching(this.#reader.subject)
      return { allowed: [], refused: { code: 'PULSE_ERR_TOO_MANY_SUBSCRIPTIONS', message: `The token's subject may watch at most ${this.limits.maxSubscriptions} series over all its streams; it watches ${watching} and this request would add ${added}` } }
    }
    if (this.byIp !== undefined && !this.byIp.limits.mayWatch(this.byIp.ip, added)) {
      return { allowed: [], refused: { code: 'PULSE_ERR_TOO_MANY_SUBSCRIPTIONS', message: `One client address may watch at most ${this.byIp.limits.maxSubscriptions} series over all its streams; it watches ${this.byIp.limits.watching(this.byIp.ip)} and this request would add ${added}` } }
    }
    return denied.length === 0 ? { allowed } : { allowed, notEntitled: notEntitled(denied) }
  }

  /** Throws `PULSE_ERR_NOT_ENTITLED` unless the reader may read `ticker` at `resolution`. */
  checkRead (ticker: string, resolution: Resolution): void {
    if (!this.#reader.entitlement.allows(ticker, resolution)) throw new PulseError('PULSE_ERR_NOT_ENTITLED', notEntitled([`${ticker}#${resolution}`]).message)
  }

  /**
   * Replaces the token: the new one must verify and name the same subject. Resolves with
   * the series of `connection` the new token no longer covers (the caller drops them).
   */
  async refresh (token: string, connection: AccessConnection): Promise<{ expiresAt: number | undefined, dropped: SeriesKey[] }> {
    const next = await this.auth.authenticate(token)
    if (next.subject !== this.#reader.subject) {
      throw new PulseError('PULSE_ERR_UNAUTHORIZED', 'A refresh token must name the same subject (sub) as the connection\'s token; open a new connection for another subject')
    }
    this.#reader = next
    this.#arm()
    return { expiresAt: next.expiresAt, dropped: next.entitlement.split([...connection.subscriptions]).denied }
  }

  /** Stops the expiry timer and the subject's count of this stream. */
  close (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#forget()
    this.#forgetIp()
  }

  #arm (): void {
    clearTimeout(this.#timer)
    const expiresAt = this.#reader.expiresAt
    if (expiresAt === undefined) return
    const left = expiresAt - this.now()
    this.#timer = setTimeout(() => {
      if (this.#reader.expiresAt !== undefined && this.#reader.expiresAt > this.now()) this.#arm()
      else this.onExpire()
    }, Math.min(Math.max(0, left), MAX_TIMER_MS))
    this.#timer.unref()
  }
}

import { parseSeriesKey, type SeriesKey } from '../../../shared/timeseries/keys.js'
import { isResolution, type Resolution } from '../../../shared/timeseries/resolutions.js'

/*
 * What a reader may read: tickers as names or `*` patterns, and optionally resolutions.
 * Tokens say it in their `tickers` and `resolutions` claims; READ_TOKEN and open reads
 * mean everything.
 */

/** Most patterns a token may list: more is a token built to make every check slow. */
export const MAX_PATTERNS = 1000

/** A ticker pattern: a name, `*` for every ticker, or a name with `*` wildcards (`TECH.*`). */
const PATTERN = /^[A-Z0-9.*-]{1,16}$/

function compile (pattern: string): (ticker: string) => boolean {
  if (pattern === '*') return () => true
  if (!pattern.includes('*')) return (ticker) => ticker === pattern
  const regex = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.\\-]/g, '\\$&')).join('.*')}$`)
  return (ticker) => regex.test(ticker)
}

/** Why claims could not be read as an entitlement. */
export class EntitlementClaimError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'EntitlementClaimError'
  }
}

/**
 * The tickers and resolutions one reader may see. Checks are cached per ticker, so a
 * token with many patterns costs its matching once per ticker, not once per event.
 */
export class Entitlement {
  static readonly everything = new Entitlement(['*'], undefined)

  readonly #matchers: Array<(ticker: string) => boolean>
  readonly #resolutions: ReadonlySet<Resolution> | undefined
  readonly #seen = new Map<string, boolean>()

  /** `tickers`: names or patterns; `resolutions`: undefined for all. */
  constructor (readonly tickers: readonly string[], resolutions: readonly Resolution[] | undefined) {
    this.#matchers = tickers.map(compile)
    this.#resolutions = resolutions === undefined ? undefined : new Set(resolutions)
  }

  /**
   * Reads the `tickers` (`"*"`, or a list of names and patterns) and `resolutions` (a
   * list; absent: all) claims; throws {@link EntitlementClaimError} naming the problem.
   */
  static fromClaims (claims: Record<string, unknown>): Entitlement {
    const tickers = claims.tickers
    let patterns: string[]
    if (tickers === '*') patterns = ['*']
    else if (Array.isArray(tickers) && tickers.length <= MAX_PATTERNS && tickers.every((t) => typeof t === 'string' && PATTERN.test(t))) patterns = tickers as string[]
    else throw new EntitlementClaimError(`the tickers claim must be "*" or a list of at most ${MAX_PATTERNS} ticker names or * patterns`)
    const resolutions = claims.resolutions
    if (resolutions === undefined || resolutions === '*') return new Entitlement(patterns, undefined)
    if (!Array.isArray(resolutions) || !resolutions.every((r) => typeof r === 'string' && isResolution(r))) {
      throw new EntitlementClaimError('the resolutions claim must be a list of resolutions (1m 5m 10m 1h 3h 6h 12h 24h)')
    }
    return new Entitlement(patterns, resolutions as Resolution[])
  }

  /** The resolutions allowed; undefined: all. */
  get resolutions (): Resolution[] | undefined {
    return this.#resolutions === undefined ? undefined : [...this.#resolutions]
  }

  /** Whether the reader may see `ticker` at some resolution. */
  allowsTicker (ticker: string): boolean {
    let allowed = this.#seen.get(ticker)
    if (allowed === undefined) {
      allowed = this.#matchers.some((match) => match(ticker))
      if (this.#seen.size < 10_000) this.#seen.set(ticker, allowed)
    }
    return allowed
  }

  /** Whether the reader may see `ticker` at `resolution`. */
  allows (ticker: string, resolution: Resolution): boolean {
    return (this.#resolutions === undefined || this.#resolutions.has(resolution)) && this.allowsTicker(ticker)
  }

  /** Splits series into those the reader may see and those it may not. */
  split (series: readonly SeriesKey[]): { allowed: SeriesKey[], denied: SeriesKey[] } {
    const allowed: SeriesKey[] = []
    const denied: SeriesKey[] = []
    for (const key of series) {
      const parsed = parseSeriesKey(key)
      if (parsed !== undefined && this.allows(parsed.ticker, parsed.resolution)) allowed.push(key)
      else denied.push(key)
    }
    return { allowed, denied }
  }
}

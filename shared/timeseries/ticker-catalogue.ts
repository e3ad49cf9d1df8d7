import { DURATION_MS, RESOLUTIONS, RETENTION_MS } from './resolutions.js'
import { TICKER_PATTERN } from './item.js'

/** `active`: accepts items and is listed; `retired`: refuses items, its history stays readable. */
export type TickerState = 'active' | 'retired'

/** One ticker of the catalogue. */
export interface TickerEntry {
  ticker: string
  state: TickerState
  /** Position in the listing: the seed's order, then the order of additions. */
  seq: number
  /** When it was added, or retired (epoch ms). */
  changedAt: number
}

/** What an add or a retire did: the entry after it, and whether anything changed. */
export interface TickerChange {
  entry: TickerEntry
  changed: boolean
}

const tickerPattern = new RegExp(TICKER_PATTERN)

/** Whether `ticker` is a well-formed ticker symbol ({@link TICKER_PATTERN}). */
export function isTickerSymbol (ticker: unknown): ticker is string {
  return typeof ticker === 'string' && tickerPattern.test(ticker)
}

/**
 * How long a retired ticker's history stays readable after it was retired: the longest
 * time any of its buckets is retained (the bucket open at retirement ends within a
 * resolution's duration, then is kept for that resolution's retention).
 */
export function retiredReadableMs (): number {
  return Math.max(...RESOLUTIONS.map((r) => DURATION_MS[r] + RETENTION_MS[r]))
}

/**
 * The set of tickers Pulse serves at one moment, as an immutable value: which accept items
 * (active), which are retired, in listing order. Changes make a new catalogue; the
 * registries (shared/ports/ticker-registry.ts) store and share it.
 */
export class TickerCatalogue {
  readonly #entries: ReadonlyMap<string, TickerEntry>
  readonly #active: readonly string[]
  readonly #all: readonly string[]

  constructor (entries: Iterable<TickerEntry>) {
    const sorted = [...entries].sort((a, b) => a.seq - b.seq || (a.ticker < b.ticker ? -1 : 1))
    this.#entries = new Map(sorted.map((e) => [e.ticker, e]))
    this.#active = sorted.filter((e) => e.state === 'active').map((e) => e.ticker)
    this.#all = sorted.map((e) => e.ticker)
  }

  /** The initial catalogue: `tickers` active, in their order (duplicates once). */
  static seeded (tickers: readonly string[], now: number): TickerCatalogue {
    return new TickerCatalogue([...new Set(tickers)].map((ticker, seq) => ({ ticker, state: 'active' as const, seq, changedAt: now })))
  }

  /** Active tickers in listing order. */
  get active (): readonly string[] {
    return this.#active
  }

  /** Every ticker, active or retired, in listing order. */
  get all (): readonly string[] {
    return this.#all
  }

  get entries (): TickerEntry[] {
    return [...this.#entries.values()]
  }

  entry (ticker: string): TickerEntry | undefined {
    return this.#entries.get(ticker)
  }

  isActive (ticker: string): boolean {
    return this.#entries.get(ticker)?.state === 'active'
  }

  isRetired (ticker: string): boolean {
    return this.#entries.get(ticker)?.state === 'retired'
  }

  /** Active, or retired recently enough that some of its history may still be retained. */
  isReadable (ticker: string, now: number): boolean {
    const entry = this.#entries.get(ticker)
    if (entry === undefined) return false
    return entry.state === 'active' || entry.changedAt + retiredReadableMs() > now
  }

  /** Tickers whose history may still be read (active and recently retired), in listing order. */
  readable (now: number): string[] {
    return this.#all.filter((ticker) => this.isReadable(ticker, now))
  }

  /** Same entries (state, order and times). */
  equals (other: TickerCatalogue): boolean {
    if (other.#entries.size !== this.#entries.size) return false
    for (const [ticker, entry] of this.#entries) {
      const theirs = other.#entries.get(ticker)
      if (theirs === undefined || theirs.state !== entry.state || theirs.seq !== entry.seq || theirs.changedAt !== entry.changedAt) return false
    }
    return true
  }

  /**
   * Adds `ticker`, or makes a retired one active again; an active one is left as it is
   * (adding is idempotent). The caller checked the symbol ({@link isTickerSymbol}).
   */
  withAdded (ticker: string, now: number): { catalogue: TickerCatalogue, change: TickerChange } {
    const held = this.#entries.get(ticker)
    if (held?.state === 'active') return { catalogue: this, change: { entry: held, changed: false } }
    const seq = held?.seq ?? this.#nextSeq()
    const entry: TickerEntry = { ticker, state: 'active', seq, changedAt: now }
    return { catalogue: this.#with(entry), change: { entry, changed: true } }
  }

  /** Retires `ticker`; undefined when the catalogue does not know it. Retiring twice changes nothing. */
  withRetired (ticker: string, now: number): { catalogue: TickerCatalogue, change: TickerChange } | undefined {
    const held = this.#entries.get(ticker)
    if (held === undefined) return undefined
    if (held.state === 'retired') return { catalogue: this, change: { entry: held, changed: false } }
    const entry: TickerEntry = { ...held, state: 'retired', changedAt: now }
    return { catalogue: this.#with(entry), change: { entry, changed: true } }
  }

  #nextSeq (): number {
    let max = -1
    for (const entry of this.#entries.values()) max = Math.max(max, entry.seq)
    return max + 1
  }

  #with (entry: TickerEntry): TickerCatalogue {
    return new TickerCatalogue([...this.#entries.values()].filter((e) => e.ticker !== entry.ticker).concat(entry))
  }
}

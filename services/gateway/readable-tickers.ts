import type { TickerRegistry } from '../../shared/ports/ticker-registry.js'

/** Answers whether a ticker is known; read on every request, so it follows the registry. */
export interface TickerLookup {
  has (ticker: string): boolean
}

/**
 * The tickers whose history and streams may be read: the active ones, and retired ones
 * while some of their history is still retained. Reads the registry's catalogue held in
 * memory, so each check costs no I/O.
 */
export function readableTickers (registry: TickerRegistry, now: () => number): TickerLookup {
  return { has: (ticker) => registry.current().isReadable(ticker, now()) }
}

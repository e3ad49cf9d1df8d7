import type { TickerCatalogue, TickerChange } from '../timeseries/ticker-catalogue.js'

/** Hears the catalogue each time this process learns that it changed. */
export type TickerCatalogueListener = (catalogue: TickerCatalogue) => void

/**
 * The tickers Pulse serves, shared by every process and changed at run time (the admin
 * API), kept where they survive a restart: a file under `DATA_DIR` in embedded mode, a
 * hash in Redis in cluster mode.
 *
 * Seeding: the first process to open an empty registry writes its initial tickers
 * (`TICKERS`) into it; from then on the registry is the truth and `TICKERS` is not read
 * again. Every process holds the catalogue in memory ({@link current}, read on the hot
 * path without I/O) and learns of changes made by any process within a few seconds
 * (cluster: a short poll of a change counter, which also reconciles after any lost change).
 */
export interface TickerRegistry {
  /** The catalogue as this process knows it now. */
  current (): TickerCatalogue
  /** Adds a ticker, or makes a retired one active again; idempotent. Stored before it resolves. */
  add (ticker: string, now: number): Promise<TickerChange>
  /** Retires a ticker; undefined when the registry does not know it; retiring twice changes nothing. */
  retire (ticker: string, now: number): Promise<TickerChange | undefined>
  /** Reads the stored catalogue now instead of at the next poll, and returns it. */
  refresh (): Promise<TickerCatalogue>
  /** Calls `listener` after every change this process learns of (its own and others'). Returns a function that stops it. */
  onChange (listener: TickerCatalogueListener): () => void
  close (): Promise<void>
}

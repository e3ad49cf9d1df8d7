import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { TickerCatalogueListener, TickerRegistry } from '../../ports/ticker-registry.js'
import { isTickerSymbol, TickerCatalogue, type TickerChange, type TickerEntry } from '../../timeseries/ticker-catalogue.js'
import { readSmallFile, replaceFileDurably } from './durable-files.js'

/** The registry's file under `DATA_DIR`. */
export const TICKER_REGISTRY_FILE = 'tickers.json'

export interface FileTickerRegistryOptions {
  /** `DATA_DIR`. */
  dir: string
  /** Written when the file does not exist yet (`TICKERS`). */
  seed: readonly string[]
  now: number
}

interface StoredFile {
  version: 1
  tickers: TickerEntry[]
}

function parseEntries (text: string, path: string): TickerEntry[] {
  const stored = JSON.parse(text) as Partial<StoredFile>
  if (stored.version !== 1 || !Array.isArray(stored.tickers)) throw new Error(`${path}: not a ticker registry (version 1)`)
  return stored.tickers.map((e, i) => {
    const ok = isTickerSymbol(e.ticker) && (e.state === 'active' || e.state === 'retired') && Number.isInteger(e.seq) && Number.isFinite(e.changedAt)
    if (!ok) throw new Error(`${path}: entry ${i} is not a ticker entry`)
    return { ticker: e.ticker, state: e.state, seq: e.seq, changedAt: e.changedAt }
  })
}

/**
 * Embedded mode's ticker registry: one process, the catalogue in memory and in
 * `DATA_DIR/tickers.json`, replaced whole and synced on every change (a crash leaves the
 * old file or the new one), so a restart keeps what was added and retired.
 */
export class FileTickerRegistry implements TickerRegistry {
  readonly #dir: string
  readonly #path: string
  readonly #listeners = new Set<TickerCatalogueListener>()
  #catalogue: TickerCatalogue
  /** Changes are stored one after another, each from the catalogue the previous left. */
  #writes: Promise<unknown> = Promise.resolve()

  private constructor (dir: string, catalogue: TickerCatalogue) {
    this.#dir = dir
    this.#path = join(dir, TICKER_REGISTRY_FILE)
    this.#catalogue = catalogue
  }

  /** Opens the registry under `dir`, seeding it when the file does not exist. */
  static async open (options: FileTickerRegistryOptions): Promise<FileTickerRegistry> {
    await mkdir(options.dir, { recursive: true })
    const path = join(options.dir, TICKER_REGISTRY_FILE)
    const text = await readSmallFile(path)
    if (text !== undefined) return new FileTickerRegistry(options.dir, new TickerCatalogue(parseEntries(text, path)))
    const registry = new FileTickerRegistry(options.dir, TickerCatalogue.seeded(options.seed, options.now))
    await registry.#store(registry.#catalogue)
    return registry
  }

  current (): TickerCatalogue {
    return this.#catalogue
  }

  async add (ticker: string, now: number): Promise<TickerChange> {
    return await this.#change(() => this.#catalogue.withAdded(ticker, now)) as TickerChange
  }

  async retire (ticker: string, now: number): Promise<TickerChange | undefined> {
    return await this.#change(() => this.#catalogue.withRetired(ticker, now))
  }

  async refresh (): Promise<TickerCatalogue> {
    await this.#writes
    return this.#catalogue
  }

  onChange (listener: TickerCatalogueListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  async close (): Promise<void> {
    await this.#writes
    this.#listeners.clear()
  }

  async #change (make: () => { catalogue: TickerCatalogue, change: TickerChange } | undefined): Promise<TickerChange | undefined> {
    const run = this.#writes.then(async () => {
      const result = make()
      if (result === undefined || !result.change.changed) return result?.change
      await this.#store(result.catalogue)
      this.#catalogue = result.catalogue
      for (const listener of this.#listeners) listener(result.catalogue)
      return result.change
    })
    this.#writes = run.catch(() => {})
    return await run
  }

  async #store (catalogue: TickerCatalogue): Promise<void> {
    const stored: StoredFile = { version: 1, tickers: catalogue.entries }
    await replaceFileDurably(this.#dir, this.#path, `${JSON.stringify(stored, null, 1)}\n`)
  }
}

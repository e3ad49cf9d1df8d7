import { createHash, timingSafeEqual } from 'node:crypto'
import type { ProducerConfig } from '../../../shared/config/config.js'
import { Entitlement } from './entitlement.js'

/*
 * The producers behind the ingest keys: who posted a batch (for the audit log), which
 * tickers it may post and how many batches a minute.
 */

/** One producer, as its key identifies it. */
export interface Producer {
  name: string
  /** Tickers it may post; undefined: every ticker. */
  scope: Entitlement | undefined
  /** Batches per minute; undefined: no limit of its own. */
  batchesPerMinute: number | undefined
}

function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/**
 * The accepted ingest keys and their producers. A key is looked up in constant time:
 * every key's digest is compared (no early exit), so timing reveals neither which key
 * matched nor how much of one. Several keys per producer name are not needed for
 * rotation: give the new key its own name and retire the old entry later.
 */
export class ProducerKeys {
  readonly #entries: Array<{ digest: Buffer, producer: Producer }>

  constructor (producers: readonly ProducerConfig[]) {
    this.#entries = producers.map((p) => ({
      digest: digest(p.key),
      producer: { name: p.name, scope: p.tickers === undefined ? undefined : new Entitlement(p.tickers, undefined), batchesPerMinute: p.batchesPerMinute }
    }))
  }

  get size (): number {
    return this.#entries.length
  }

  /** The producer whose key `candidate` is; undefined for none. */
  identify (candidate: string | undefined): Producer | undefined {
    if (candidate === undefined) return undefined
    const given = digest(candidate)
    let found: Producer | undefined
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.digest, given)) found = entry.producer
    }
    return found
  }

  /** Whether `candidate` is any producer's key. */
  matches (candidate: string | undefined): boolean {
    return this.identify(candidate) !== undefined
  }
}

/** Indexes (and tickers) of the items a producer may not post; empty when the batch is in scope. */
export function outOfScope (producer: Producer, items: ReadonlyArray<{ ticker: string }>): Array<{ index: number, ticker: string }> {
  const scope = producer.scope
  if (scope === undefined) return []
  const outside: Array<{ index: number, ticker: string }> = []
  items.forEach((item, index) => { if (!scope.allowsTicker(item.ticker)) outside.push({ index, ticker: item.ticker }) })
  return outside
}

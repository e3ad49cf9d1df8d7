import { setTimeout as sleep } from 'node:timers/promises'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { type ManagedProcess, TEST_INGEST_KEY } from '../../test/helpers/processes.js'

const SOURCES = ['tiingo', 'finnhub', 'benzinga', 'reuters']
const TICK_MS = 500
/** Duplicates resend an item accepted this recently: well inside even a shortened dedupe window. */
const DUPLICATE_HORIZON_MS = 15_000
const ATTEMPTS = 3

export interface IngestOptions {
  gateways: readonly ManagedProcess[]
  /** Tickers the stream writes to (the probe ticker is kept out of it). */
  tickers: readonly string[]
  probeTicker: string
  itemsPerSecond: number
  /** Share of items that resend an item accepted in the last seconds (same id, same fields). */
  duplicateShare: number
  /** Share of items timestamped 30 s to 4 min in the past (past buckets, some past their retention at 1m). */
  lateShare: number
}

/** An item a 202 accepted, with the time of that 202. */
export interface AcceptedItem extends ScoredItem {
  acceptedAt: number
}

export interface IngestStats {
  batches: number
  accepted: number
  duplicates: number
  late: number
  /** Requests answered with something other than 202 (each retried). */
  failedRequests: number
  /** Ticks skipped because the previous request was still running. */
  skippedTicks: number
}

/**
 * A steady ingest stream over the gateways in turn: fresh items, late items and duplicates
 * in batches every 500 ms. Every item a 202 accepted is kept in {@link ledger}, in order;
 * items of a batch that never got a 202 may or may not have been folded and are kept in
 * {@link uncertain} instead.
 */
export class IngestStream {
  readonly ledger: AcceptedItem[] = []
  readonly uncertain: ScoredItem[] = []
  readonly stats: IngestStats = { batches: 0, accepted: 0, duplicates: 0, late: 0, failedRequests: 0, skippedTicks: 0 }
  readonly #options: IngestOptions
  #serial = 0
  #next = 0
  #running: Promise<void> | undefined
  #stopped = false

  constructor (options: IngestOptions) {
    this.#options = options
  }

  start (): void {
    this.#running = this.#loop()
  }

  async stop (): Promise<void> {
    this.#stopped = true
    await this.#running
  }

  /**
   * Queue age as a client sees it: milliseconds from the 202 of one probe item to its
   * bucket showing the item (`GET /api/v2/timeseries`), or undefined when not seen in 60 s.
   */
  async probe (): Promise<number | undefined> {
    const gateway = this.#options.gateways[0] as ManagedProcess
    const ticker = this.#options.probeTicker
    const partial = async (): Promise<{ timestamp: string, count: number } | undefined> => {
      const res = await fetch(`${gateway.url}/api/v2/timeseries/${ticker}?resolution=24h`)
      const body = await res.json() as { partial_bucket: { timestamp: string, count: number } | null }
      return body.partial_bucket ?? undefined
    }
    const before = await partial().catch(() => undefined)
    const item = this.#item(ticker, Date.now())
    const acceptedAt = await this.#post(gateway, [item])
    if (acceptedAt === undefined) return undefined
    while (Date.now() - acceptedAt < 60_000) {
      const now = await partial().catch(() => undefined)
      if (now !== undefined && (before === undefined || now.timestamp !== before.timestamp || now.count > before.count)) return Date.now() - acceptedAt
      await sleep(100)
    }
    return undefined
  }

  async #loop (): Promise<void> {
    const perTick = Math.max(1, Math.round(this.#options.itemsPerSecond * TICK_MS / 1000))
    let due = Date.now()
    while (!this.#stopped) {
      const gateways = this.#options.gateways
      await this.#post(gateways[this.#next++ % gateways.length] as ManagedProcess, this.#batch(perTick))
      due += TICK_MS
      const wait = due - Date.now()
      if (wait > 0) await sleep(wait)
      else {
        const behind = Math.floor(-wait / TICK_MS)
        this.stats.skippedTicks += behind
        due += behind * TICK_MS
      }
    }
  }

  #batch (size: number): ScoredItem[] {
    const now = Date.now()
    const { tickers, duplicateShare, lateShare } = this.#options
    const recent = this.#recent(now)
    return Array.from({ length: size }, () => {
      const roll = Math.random()
      if (roll < duplicateShare && recent.length > 0) {
        this.stats.duplicates++
        return recent[Math.floor(Math.random() * recent.length)] as ScoredItem
      }
      const ticker = tickers[Math.floor(Math.random() * tickers.length)] as string
      if (roll < duplicateShare + lateShare) {
        this.stats.late++
        return this.#item(ticker, now - 30_000 - Math.floor(Math.random() * 210_000))
      }
      return this.#item(ticker, now - Math.floor(Math.random() * 3000))
    })
  }

  /** Accepted items of the last {@link DUPLICATE_HORIZON_MS}, from the ledger's tail. */
  #recent (now: number): ScoredItem[] {
    const recent: ScoredItem[] = []
    for (let i = this.ledger.length - 1; i >= 0 && recent.length < 200; i--) {
      const item = this.ledger[i] as AcceptedItem
      if (item.acceptedAt < now - DUPLICATE_HORIZON_MS) break
      recent.push(item)
    }
    return recent
  }

  #item (ticker: string, ts: number): ScoredItem {
    const score = Math.round((Math.random() * 2 - 1) * 1e4) / 1e4
    return { id: `soak-${process.pid}-${this.#serial++}`, ticker, ts, score, label: labelFor(score), source: SOURCES[this.#serial % SOURCES.length] as string }
  }

  /** Posts one batch, retrying what is not a 202; the time of the 202, or undefined. */
  async #post (gateway: ManagedProcess, items: ScoredItem[]): Promise<number | undefined> {
    const body = JSON.stringify(items.map((i) => ({ id: i.id, ticker: i.ticker, timestamp: new Date(i.ts).toISOString(), score: i.score, source: i.source })))
    this.stats.batches++
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const status = await fetch(`${gateway.url}/api/v2/items`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_INGEST_KEY}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(10_000)
      }).then(async (res) => { await res.arrayBuffer(); return res.status }).catch(() => 0)
      if (status === 202) {
        const acceptedAt = Date.now()
        for (const item of items) this.ledger.push({ ...item, acceptedAt })
        this.stats.accepted += items.length
        return acceptedAt
      }
      this.stats.failedRequests++
      // A 4xx other than 429 is a refusal that changes nothing: not worth retrying.
      if (status >= 400 && status < 500 && status !== 429) return undefined
      if (attempt < ATTEMPTS) await sleep(1000)
    }
    this.uncertain.push(...items)
    return undefined
  }
}

import type { Backlog, BatchHandler, IngestBatch } from '../../ports/ingest-queue.js'

export interface DeliveryOptions {
  /** Longest pause between retries of a failing batch. */
  maxBackoffMs: number
  onError?: ((err: unknown, batch: IngestBatch) => void) | undefined
}

/** What was on disk when the journal opened, to hand over before anything accepted since. */
export type Replay = () => AsyncIterable<IngestBatch>

/**
 * Hands the journal's batches to its one consumer, one at a time and in sequence order:
 * first the replay of what was on disk at open, then every batch accepted since. A batch
 * the consumer fails is retried, redelivered, after a jittered backoff that doubles up to
 * `maxBackoffMs`, and nothing after it is handed over meanwhile.
 */
export class BatchDelivery {
  readonly #options: DeliveryOptions
  readonly #backlog: IngestBatch[] = []
  /** Items and framed bytes of the batches accepted since open and not yet finished. */
  readonly #backlogSize: Backlog = { items: 0, bytes: 0 }
  readonly #frameBytes = new WeakMap<IngestBatch, number>()
  #replayLeft: number
  #finishedSeq: number
  #active = false
  #closed = false
  #wake: (() => void) | undefined
  #loop: Promise<void> | undefined

  /** `finishedSeq`: every batch up to it is done already (the journal's checkpoint). */
  constructor (options: DeliveryOptions, finishedSeq: number, replayCount: number) {
    this.#options = options
    this.#finishedSeq = finishedSeq
    this.#replayLeft = replayCount
  }

  /** Highest sequence handed to the consumer and finished; every earlier one is finished too. */
  get finishedSeq (): number {
    return this.#finishedSeq
  }

  /** Batches not yet handed over, and whether one is in the consumer's hands. */
  get waiting (): number {
    return this.#replayLeft + this.#backlog.length - (this.#active ? 1 : 0)
  }

  /** What the batches accepted since open and not yet finished weigh (admission control). */
  get backlog (): Backlog {
    return { ...this.#backlogSize }
  }

  get active (): boolean {
    return this.#active
  }

  start (handler: BatchHandler, replay: Replay): void {
    this.#loop = this.#run(handler, replay)
  }

  /** A batch just made durable (`bytes` on disk); batches arrive here in sequence order. */
  push (batch: IngestBatch, bytes: number): void {
    this.#backlog.push(batch)
    this.#backlogSize.items += batch.items.length
    this.#backlogSize.bytes += bytes
    this.#frameBytes.set(batch, bytes)
    this.#wake?.()
  }

  /** Stops handing over batches; the one in hand finishes. */
  async close (): Promise<void> {
    this.#closed = true
    this.#wake?.()
    await this.#loop
  }

  async #run (handler: BatchHandler, replay: Replay): Promise<void> {
    for await (const batch of replay()) {
      if (!await this.#deliver(handler, batch)) return
      this.#replayLeft--
    }
    this.#replayLeft = 0
    while (!this.#closed) {
      const batch = this.#backlog[0]
      if (batch === undefined) {
        await new Promise<void>((resolve) => { this.#wake = resolve })
        this.#wake = undefined
        continue
      }
      if (!await this.#deliver(handler, batch)) return
      this.#backlog.shift()
      this.#backlogSize.items -= batch.items.length
      this.#backlogSize.bytes -= this.#frameBytes.get(batch) ?? 0
    }
  }

  /** Hands `batch` to the consumer until it succeeds; false when closed first. */
  async #deliver (handler: BatchHandler, batch: IngestBatch): Promise<boolean> {
    let failures = 0
    let attempt = batch
    while (!this.#closed) {
      this.#active = true
      try {
        await handler(attempt)
        this.#finishedSeq = Math.max(this.#finishedSeq, attempt.mark?.seq ?? 0)
        return true
      } catch (err) {
        failures++
        this.#options.onError?.(err, attempt)
        attempt = { ...attempt, redelivered: true }
      } finally {
        this.#active = false
      }
      const backoff = Math.min(this.#options.maxBackoffMs, 100 * 2 ** Math.min(failures, 16))
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoff * (0.5 + Math.random() / 2))
        this.#wake = () => { clearTimeout(timer); resolve() }
      })
      this.#wake = undefined
    }
    return false
  }
}

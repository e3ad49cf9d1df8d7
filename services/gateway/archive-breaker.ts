/** Defaults of {@link ArchiveBreakerOptions}. */
export const ARCHIVE_BREAKER_DEFAULTS = {
  deadlineMs: 2000,
  failures: 2,
  cooldownMs: 5000
} as const

export interface ArchiveBreakerOptions {
  /** A read that has not answered by then counts as failed and its caller goes on without it. */
  deadlineMs?: number
  /** Failures in a row that open the breaker. */
  failures?: number
  /** How long an open breaker refuses reads before one read may try again. */
  cooldownMs?: number
  now?: () => number
}

/** The archive was not asked (the breaker is open) or did not answer in time. */
export class ArchiveUnavailableError extends Error {
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'ArchiveUnavailableError'
  }
}

/**
 * A circuit breaker for the gateway's archive reads, so a request never waits on an
 * archive that does not answer (a paused or unreachable DynamoDB: the SDK's own timeouts
 * are long, and loopback endpoints have none). Each read gets `deadlineMs`; `failures`
 * failed or late reads in a row open the breaker, which then refuses reads at once for
 * `cooldownMs`; after that one read goes through as a probe, and its success closes it.
 * The caller answers from the hot state meanwhile.
 */
export class ArchiveBreaker {
  readonly #deadlineMs: number
  readonly #threshold: number
  readonly #cooldownMs: number
  readonly #now: () => number
  #failures = 0
  #openUntil = 0
  #probing = false
  /** Reads refused at once because the breaker was open. */
  refused = 0

  constructor (options: ArchiveBreakerOptions = {}) {
    this.#deadlineMs = options.deadlineMs ?? ARCHIVE_BREAKER_DEFAULTS.deadlineMs
    this.#threshold = options.failures ?? ARCHIVE_BREAKER_DEFAULTS.failures
    this.#cooldownMs = options.cooldownMs ?? ARCHIVE_BREAKER_DEFAULTS.cooldownMs
    this.#now = options.now ?? Date.now
  }

  /** True while reads are refused without asking the archive. */
  get open (): boolean {
    return this.#failures >= this.#threshold && (this.#now() < this.#openUntil || this.#probing)
  }

  /** Runs one archive read under the breaker; rejects with {@link ArchiveUnavailableError} when it is open or the read is late. */
  async run<T> (read: () => Promise<T>): Promise<T> {
    const tripped = this.#failures >= this.#threshold
    if (tripped && (this.#now() < this.#openUntil || this.#probing)) {
      this.refused++
      throw new ArchiveUnavailableError('the archive is not answering; reads are paused')
    }
    if (tripped) this.#probing = true
    let timer: NodeJS.Timeout | undefined
    try {
      const late = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new ArchiveUnavailableError(`the archive did not answer within ${this.#deadlineMs} ms`)), this.#deadlineMs)
        timer.unref()
      })
      const attempt = read()
      attempt.catch(() => {})
      const value = await Promise.race([attempt, late])
      this.#failures = 0
      return value
    } catch (err) {
      this.#failures++
      if (this.#failures >= this.#threshold) this.#openUntil = this.#now() + this.#cooldownMs
      throw err instanceof ArchiveUnavailableError ? err : new ArchiveUnavailableError('the archive read failed', { cause: err })
    } finally {
      clearTimeout(timer)
      if (tripped) this.#probing = false
    }
  }
}

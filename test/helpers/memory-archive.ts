import type { Archive, PutOutcome } from '../../shared/ports/archive.js'
import type { Bucket } from '../../shared/timeseries/bucket.js'
import { isNewerState } from '../../shared/timeseries/revision.js'
import { type BucketRef, bucketId, seriesKey } from '../../shared/timeseries/keys.js'
import { type Resolution, ttlSeconds } from '../../shared/timeseries/resolutions.js'

function unexpired (bucket: Bucket, now: number): boolean {
  return ttlSeconds(bucket.start, bucket.resolution) * 1000 >= now
}

/**
 * An archive in process memory with the DynamoDB table's semantics: full bucket states
 * keyed by series and start, and reads that leave out buckets whose `ttl` has passed.
 * A test double for tests and benchmarks that need a real archive without a store.
 */
export class MemoryArchive implements Archive {
  readonly #series = new Map<string, Map<number, Bucket>>()
  #writes = 0
  #term = 2 ** 20 - 1

  async nextTerm (): Promise<number> {
    return ++this.#term
  }

  /** Stores each bucket unless a newer or equal rev is stored, as the DynamoDB condition does. */
  async put (buckets: Bucket[]): Promise<PutOutcome> {
    const outcome: PutOutcome = { written: [], superseded: [], rejected: [], failed: [] }
    for (const bucket of buckets) {
      const key = seriesKey(bucket.ticker, bucket.resolution)
      let series = this.#series.get(key)
      if (series === undefined) {
        series = new Map()
        this.#series.set(key, series)
      }
      const stored = series.get(bucket.start)
      if (!isNewerState(bucket, stored)) {
        outcome.superseded.push(bucket)
        continue
      }
      series.set(bucket.start, structuredClone(bucket))
      this.#writes++
      outcome.written.push(bucket)
    }
    return outcome
  }

  async range (ticker: string, resolution: Resolution, from: number, to: number, now: number): Promise<Bucket[]> {
    const series = this.#series.get(seriesKey(ticker, resolution))
    if (series === undefined) return []
    return [...series.values()]
      .filter((b) => b.start >= from && b.start < to && unexpired(b, now))
      .sort((a, b) => a.start - b.start)
      .map((b) => structuredClone(b))
  }

  async get (refs: BucketRef[], now: number): Promise<Bucket[]> {
    const result: Bucket[] = []
    const done = new Set<string>()
    for (const ref of refs) {
      const id = bucketId(ref)
      if (done.has(id)) continue
      done.add(id)
      const bucket = this.#series.get(seriesKey(ref.ticker, ref.resolution))?.get(ref.start)
      if (bucket !== undefined && unexpired(bucket, now)) result.push(structuredClone(bucket))
    }
    return result
  }

  /** Bucket writes so far (one per bucket per `put`). */
  get writes (): number {
    return this.#writes
  }

  async ping (): Promise<void> {}

  async close (): Promise<void> {}
}

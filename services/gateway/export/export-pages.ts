import { PulseError } from '../../../shared/errors.js'
import type { Archive } from '../../../shared/ports/archive.js'
import type { HotState } from '../../../shared/ports/hot-state.js'
import { type Bucket, toWireBucket, type WireBucket } from '../../../shared/timeseries/bucket.js'
import { bucketStart, DURATION_MS, isRetained, type Resolution } from '../../../shared/timeseries/resolutions.js'
import { isNewerState } from '../../../shared/timeseries/revision.js'
import type { ArchiveBreaker } from '../archive-breaker.js'

/** Bucket slots one export page spans: each page is one archive query and one hot-state read. */
export const EXPORT_PAGE_BUCKETS = 500

export interface ExportSource {
  archive: Archive
  hot: HotState
  /** Guards the archive reads, as history's are guarded (deadline, circuit breaker). */
  breaker: ArchiveBreaker
  /** Told why a tier failed a read (the gateway logs it). */
  onError?: (err: unknown) => void
}

export interface ExportRead {
  ticker: string
  resolution: Resolution
  /** `from <= bucket start < to`. */
  from: number
  to: number
  /** The clock of the export, read once: which bucket is current and what is retained. */
  now: number
  /** Stops the reading between pages (the client went away). */
  signal?: AbortSignal | undefined
  /** Bucket slots per page (default {@link EXPORT_PAGE_BUCKETS}). */
  pageBuckets?: number
}

/** Exports reading pages right now, in this process: a client that went away must not leave one running. */
let running = 0

/** How many exports are reading pages in this process now. */
export function runningExports (): number {
  return running
}

/** One page of the range from both tiers: the newer state of each bucket wins, as in the series cache. */
async function readPage (source: ExportSource, read: ExportRead, from: number, to: number): Promise<Bucket[]> {
  const { ticker, resolution, now } = read
  const [archived, hot] = await Promise.allSettled([
    source.breaker.run(async () => await source.archive.range(ticker, resolution, from, to, now)),
    source.hot.range(ticker, resolution, from, to)
  ])
  if (archived.status === 'rejected' || hot.status === 'rejected') {
    const tier = archived.status === 'rejected' ? 'the archive' : 'the hot state'
    const error = new PulseError('PULSE_ERR_UNAVAILABLE', `The export cannot be read: ${tier} did not answer; retry later`)
    error.cause = archived.status === 'rejected' ? archived.reason : (hot as PromiseRejectedResult).reason
    source.onError?.(error.cause)
    throw error
  }
  const merged = new Map<number, Bucket>()
  for (const bucket of [...archived.value, ...hot.value]) {
    if (isNewerState(bucket, merged.get(bucket.start))) merged.set(bucket.start, bucket)
  }
  return [...merged.values()].sort((a, b) => a.start - b.start)
}

/**
 * The completed buckets of `[from, to)` in ascending order, a page at a time: each page
 * reads `pageBuckets` bucket slots from the archive and the hot state and is yielded
 * (empty or not) before the next is read, so memory follows the page, not the range. The rows are those
 * history's `buckets` holds for the same range (the bucket in progress is left out, as
 * are buckets past their retention). A tier that does not answer fails the read with
 * `PULSE_ERR_UNAVAILABLE`: an export never leaves buckets out silently.
 */
export async function * exportPages (source: ExportSource, read: ExportRead): AsyncGenerator<WireBucket[]> {
  const { resolution, now, signal } = read
  const span = (read.pageBuckets ?? EXPORT_PAGE_BUCKETS) * DURATION_MS[resolution]
  const current = bucketStart(now, resolution)
  const stopped = (): boolean => signal?.aborted === true
  running++
  try {
    for (let from = read.from; from < read.to && !stopped(); from += span) {
      const to = Math.min(read.to, from + span)
      const page: WireBucket[] = []
      for (const bucket of await readPage(source, read, from, to)) {
        if (bucket.start === current || !isRetained(bucket.start, resolution, now)) continue
        page.push(toWireBucket(bucket, now))
      }
      if (!stopped()) yield page
    }
  } finally {
    running--
  }
}

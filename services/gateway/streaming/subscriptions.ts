import { type ErrorCode, ERRORS } from '../../../shared/errors.js'
import { type Resolution, type SeriesKey, isResolution, parseSeriesKey, seriesKey } from '../../../shared/timeseries/index.js'
import type { SeriesCache } from '../series-cache.js'
import { isAfterResumePoint } from './event-id.js'
import { StreamEvent } from './stream-event.js'

/** A rejected selection: a catalogue code and a message naming the culprit. */
export interface SelectionError {
  code: ErrorCode
  message: string
}

/** Tickers × resolutions, checked against the configured tickers and the resolutions. */
export function selectSeries (tickers: readonly string[], resolutions: readonly string[], known: ReadonlySet<string>): SeriesKey[] | SelectionError {
  const badResolution = resolutions.find((r) => !isResolution(r))
  if (badResolution !== undefined) {
    return { code: 'PULSE_ERR_BAD_RESOLUTION', message: `${JSON.stringify(badResolution.slice(0, 16))}: ${ERRORS.PULSE_ERR_BAD_RESOLUTION.message}` }
  }
  const unknown = tickers.find((t) => !known.has(t))
  if (unknown !== undefined) return { code: 'PULSE_ERR_UNKNOWN_TICKER', message: `Unknown ticker ${JSON.stringify(unknown.slice(0, 16))}` }
  const keys = new Set<SeriesKey>()
  for (const ticker of tickers) for (const resolution of resolutions) keys.add(seriesKey(ticker, resolution as Resolution))
  return [...keys]
}

/** Splits a comma-separated query parameter. */
export function listParam (value: unknown): string[] {
  if (typeof value !== 'string') return []
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
}

/**
 * The resume replay: every bucket of `series` whose stream time is at or after the resume
 * point (less the grace window), read from the L1 cache. Call it after joining the
 * channels, so nothing that changes during the read is missed; a state that arrives both
 * ways is deduplicated by the mailbox, newest `rev` winning.
 */
export async function replaySince (cache: SeriesCache, series: readonly SeriesKey[], since: number, now: number): Promise<StreamEvent[]> {
  const events: StreamEvent[] = []
  await Promise.all(series.map(async (key) => {
    const parsed = parseSeriesKey(key)
    if (parsed === undefined) return
    const view = await cache.read(parsed.ticker, parsed.resolution)
    for (const bucket of view.buckets) {
      if (isAfterResumePoint(bucket, since, now)) events.push(new StreamEvent(bucket, 'resume', now))
    }
  }))
  return events
}

import { PulseError } from '../../../shared/errors.js'
import { MAX_FUTURE_MS } from '../../../shared/timeseries/item.js'
import { bucketStart, DURATION_MS, type Resolution, RETENTION_MS } from '../../../shared/timeseries/resolutions.js'
import { type HistoryRequest, resolveRange } from '../history.js'

/** The `[from, to)` window an export reads, already cut to what the resolution retains. */
export interface ExportRange {
  /** As asked (or defaulted): the bounds the file name and the documentation speak of. */
  asked: { from: number, to: number }
  /** Where reading starts and stops: nothing before `from` is still retained, nothing at or after `to` was asked for. */
  from: number
  to: number
}

/**
 * Oldest bucket start a resolution still retains at `now`, exclusive: a bucket is retained
 * while its end plus the retention is in the future (see `isRetained`).
 */
export function retentionFloor (resolution: Resolution, now: number): number {
  return now - RETENTION_MS[resolution] - DURATION_MS[resolution]
}

function iso (ms: number): string {
  return new Date(ms).toISOString()
}

/**
 * Resolves an export's range: `start`/`end` as history reads them (same defaults, same
 * 400s), any length, then cut to the retained window. A range with no retained time at
 * all — it ends before the oldest retained bucket, or starts past the newest bucket an
 * item may open — is refused with `PULSE_ERR_OUTSIDE_RETENTION`; a range that reaches
 * before the retention is read from the oldest retained bucket on.
 */
export function resolveExportRange (request: HistoryRequest, now: number): ExportRange {
  const asked = resolveRange(request, now, false)
  const floor = retentionFloor(request.resolution, now)
  const newest = bucketStart(now + MAX_FUTURE_MS, request.resolution)
  if (asked.to <= floor + 1 || asked.from > newest) {
    const retained = `${iso(bucketStart(floor, request.resolution) + DURATION_MS[request.resolution])} to ${iso(now)}`
    throw new PulseError('PULSE_ERR_OUTSIDE_RETENTION', `The range ${iso(asked.from)} to ${iso(asked.to)} holds no ${request.resolution} bucket still retained; ${request.resolution} keeps ${retained}`)
  }
  return { asked, from: Math.max(asked.from, floor + 1), to: asked.to }
}

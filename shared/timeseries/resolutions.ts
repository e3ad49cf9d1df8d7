/** The eight resolutions Pulse aggregates at, shortest first. Nothing else is accepted. */
export const RESOLUTIONS = ['1m', '5m', '10m', '1h', '3h', '6h', '12h', '24h'] as const

export type Resolution = typeof RESOLUTIONS[number]

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** Bucket length of each resolution, in milliseconds. */
export const DURATION_MS: Readonly<Record<Resolution, number>> = {
  '1m': MINUTE,
  '5m': 5 * MINUTE,
  '10m': 10 * MINUTE,
  '1h': HOUR,
  '3h': 3 * HOUR,
  '6h': 6 * HOUR,
  '12h': 12 * HOUR,
  '24h': DAY
}

/** How long a bucket of each resolution is kept after its end, in production. */
export const PRODUCTION_RETENTION_MS: Readonly<Record<Resolution, number>> = {
  '1m': 6 * HOUR,
  '5m': 12 * HOUR,
  '10m': DAY,
  '1h': 7 * DAY,
  '3h': 14 * DAY,
  '6h': 30 * DAY,
  '12h': 60 * DAY,
  '24h': 90 * DAY
}

/**
 * How long a bucket is kept after its end (DynamoDB `ttl` = end + retention): the
 * production retention, unless a test scale was applied with {@link applyRetentionScale}.
 * Every rule that speaks of retention reads this table, so one call changes them all.
 */
export const RETENTION_MS: Readonly<Record<Resolution, number>> = { ...PRODUCTION_RETENTION_MS }

/**
 * The production retention divided by `scale` (a test setting, so that expiry happens
 * within minutes), in whole seconds and at least one: a bucket's `ttl` (whole seconds)
 * then agrees exactly with {@link isRetained}.
 */
export function scaledRetention (scale: number): Record<Resolution, number> {
  if (!Number.isInteger(scale) || scale < 1) throw new RangeError(`retention scale must be a whole number of at least 1; got ${scale}`)
  const scaled = {} as Record<Resolution, number>
  for (const resolution of RESOLUTIONS) {
    scaled[resolution] = Math.max(1000, Math.round(PRODUCTION_RETENTION_MS[resolution] / scale / 1000) * 1000)
  }
  return scaled
}

/**
 * Sets {@link RETENTION_MS} for this thread to the production retention divided by `scale`
 * (1: production). Called once at start with the configured scale (`retentionScale`), before
 * anything folds or reads; never in production, where the configuration refuses a scale.
 */
export function applyRetentionScale (scale: number): void {
  Object.assign(RETENTION_MS, scaledRetention(scale))
  appliedScale = scale
}

let appliedScale = 1

/** The scale {@link applyRetentionScale} applied: 1 in production. */
export function retentionScale (): number {
  return appliedScale
}

export function isResolution (value: unknown): value is Resolution {
  return typeof value === 'string' && (RESOLUTIONS as readonly string[]).includes(value)
}

/** Start of the bucket containing `epochMs`: epoch-aligned UTC. */
export function bucketStart (epochMs: number, resolution: Resolution): number {
  const duration = DURATION_MS[resolution]
  return Math.floor(epochMs / duration) * duration
}

/** End (exclusive) of the bucket that starts at `startMs`. */
export function bucketEnd (startMs: number, resolution: Resolution): number {
  return startMs + DURATION_MS[resolution]
}

/** True while a bucket that starts at `startMs` is inside its resolution's retention at `now`. */
export function isRetained (startMs: number, resolution: Resolution, now: number): boolean {
  return bucketEnd(startMs, resolution) + RETENTION_MS[resolution] > now
}

/** DynamoDB TTL attribute: epoch seconds at which the bucket expires. */
export function ttlSeconds (startMs: number, resolution: Resolution): number {
  return Math.floor((bucketEnd(startMs, resolution) + RETENTION_MS[resolution]) / 1000)
}

/** ISO 8601 UTC to the second, the wire and sort-key format: `2025-12-21T10:35:00Z`. */
export function toIsoSecond (epochMs: number): string {
  return new Date(Math.floor(epochMs / 1000) * 1000).toISOString().replace('.000Z', 'Z')
}

/** How far `now` is through the bucket, 0–100, one decimal. */
export function progressPct (startMs: number, resolution: Resolution, now: number): number {
  const pct = ((now - startMs) / DURATION_MS[resolution]) * 100
  return Math.round(Math.min(100, Math.max(0, pct)) * 10) / 10
}

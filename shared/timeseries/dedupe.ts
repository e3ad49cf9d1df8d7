import { createHash } from 'node:crypto'
import { dedupeKey } from './keys.js'

/**
 * How hot states remember which items they have counted, with the same bounded memory per
 * item whatever the length of its id.
 *
 * An item is remembered by a fixed-width fingerprint: the first {@link DEDUPE_HASH_BYTES}
 * bytes of SHA-1 over its idempotency key `(ticker, id)`. Two different items share a
 * fingerprint with probability about n / 2^64 per lookup (n items remembered): at 1,000
 * items/s over 24 h, one wrongly dropped item in roughly 10^11.
 *
 * Fingerprints are kept in time slices of `window / DEDUPE_SLICES_PER_WINDOW`. A fold adds
 * to the slice of `now`; a slice is dropped whole once its end plus the window has passed,
 * so every item is remembered for at least the window and at most one slice longer. A
 * lookup checks every slice that can still hold an item of the window, plus the next one
 * (a worker whose clock runs up to a slice ahead may have written there).
 */

/** Bytes of SHA-1 kept per item. */
export const DEDUPE_HASH_BYTES = 8
/** Slices per dedupe window: more slices waste less memory at the window's edge, fewer mean fewer lookups. */
export const DEDUPE_SLICES_PER_WINDOW = 6

/** The fingerprint of an item, {@link DEDUPE_HASH_BYTES} bytes. */
export function dedupeFingerprint (ticker: string, id: string): Buffer {
  return createHash('sha1').update(dedupeKey(ticker, id)).digest().subarray(0, DEDUPE_HASH_BYTES)
}

/** The slices a fold at `now` reads and writes. */
export interface DedupeSlices {
  /** Slice length, ms. */
  sliceMs: number
  /** The slice new fingerprints go into. */
  current: number
  /** When {@link current} may be dropped (epoch ms): its end plus the window. */
  currentExpiresAt: number
  /** Every slice a lookup checks, {@link current} included, ascending. */
  checked: number[]
}

export function dedupeSliceMs (windowMs: number): number {
  return Math.ceil(windowMs / DEDUPE_SLICES_PER_WINDOW)
}

/** When slice `slice` may be dropped, epoch ms. */
export function dedupeSliceExpiresAt (slice: number, windowMs: number): number {
  return (slice + 1) * dedupeSliceMs(windowMs) + windowMs
}

export function dedupeSlices (now: number, windowMs: number): DedupeSlices {
  const sliceMs = dedupeSliceMs(windowMs)
  const current = Math.floor(now / sliceMs)
  const checked: number[] = []
  for (let slice = Math.floor((now - windowMs) / sliceMs) - 1; slice <= current + 1; slice++) {
    if (dedupeSliceExpiresAt(slice, windowMs) > now) checked.push(slice)
  }
  return { sliceMs, current, currentExpiresAt: dedupeSliceExpiresAt(current, windowMs), checked }
}

import type { BucketEvent } from '../../ports/bus.js'
import { isResolution } from '../../timeseries/resolutions.js'
import { BUCKET_FIELDS, decodeBucket, encodeBucket, numberText } from './bucket-codec.js'

/**
 * A message on a Redis series channel: a JSON array of strings,
 *
 * `[kind, acceptedAt, ticker, resolution, start, ...the bucket hash fields, lastAtRev]`
 *
 * with the hash fields in {@link BUCKET_FIELDS} order, exactly as the hash stores them
 * (`acceptedAt` is `''` when the event has none; `lastAtRev` is `'1'` or `''`, see
 * {@link BucketEvent.lastAtRev}). Two encoders write it: lua/fold.lua,
 * which publishes every change inside the fold from the values it has just stored (it
 * never prints a number of its own: Lua's cjson keeps 14 significant digits), and
 * {@link encodeBusMessage} for the finalizer's `final` events. One decoder reads it, with
 * the codec that reads HGETALL, so a state on the bus is exactly the stored one.
 */
export const BUS_MESSAGE_HEAD = ['kind', 'acceptedAt', 'ticker', 'resolution', 'start'] as const

const LENGTH = BUS_MESSAGE_HEAD.length + BUCKET_FIELDS.length + 1

/** Hash fields every stored bucket has (`''` would read as 0): the aggregate's numbers, the sources, `rev` and `upd`. */
const REQUIRED = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 15]

/** The wire text of a bucket event (see {@link BUS_MESSAGE_HEAD}). */
export function encodeBusMessage (event: BucketEvent): string {
  const { bucket } = event
  return JSON.stringify([
    event.kind,
    event.acceptedAt === undefined ? '' : numberText(event.acceptedAt),
    bucket.ticker,
    bucket.resolution,
    numberText(bucket.start),
    ...encodeBucket(bucket),
    event.lastAtRev === true ? '1' : ''
  ])
}

/**
 * The bucket event a message carries, or `undefined` when the text is not one (not JSON,
 * not an array of {@link BUS_MESSAGE_HEAD} and the hash fields as strings, an unknown
 * resolution, an empty bucket). Field values are only parsed here: a receiver that serves
 * the event validates it (the gateway's series cache does).
 */
export function decodeBusMessage (text: string): BucketEvent | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!Array.isArray(parsed) || parsed.length !== LENGTH || !parsed.every((value) => typeof value === 'string')) return undefined
  const [kind, acceptedAt, ticker, resolution, start, ...rest] = parsed as string[]
  const fields = rest.slice(0, BUCKET_FIELDS.length)
  const lastAtRev = rest[BUCKET_FIELDS.length] === '1' ? { lastAtRev: true as const } : {}
  if ((kind !== 'change' && kind !== 'final') || resolution === undefined || !isResolution(resolution) || ticker === undefined || start === '') return undefined
  if (REQUIRED.some((i) => fields[i] === '')) return undefined
  let bucket
  try {
    bucket = decodeBucket({ ticker, resolution, start: Number(start) }, fields)
  } catch {
    // The sources field is not JSON.
    return undefined
  }
  if (bucket === undefined) return undefined
  return acceptedAt === '' || acceptedAt === undefined ? { kind, bucket, ...lastAtRev } : { kind, bucket, acceptedAt: Number(acceptedAt), ...lastAtRev }
}

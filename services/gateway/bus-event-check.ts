import { TypeCompiler } from '@sinclair/typebox/compiler'
import { bucketStart, type Resolution } from '../../shared/timeseries/resolutions.js'
import { BusEventSchema } from './schemas.js'

/*
 * A bus message is input from another process: every one a gateway receives (the series
 * cache's, the ticker board's) is checked before anything uses it, and a bad one is dropped
 * and reported, never passed on.
 */

/** Compiled once: every bus message a gateway receives is checked with it. */
const busEventCheck = TypeCompiler.Compile(BusEventSchema)

/** Why a bus message is not a bucket event of `series`, or undefined when it is. */
export function eventProblem (series: { ticker: string, resolution: Resolution }, event: unknown): string | undefined {
  if (!busEventCheck.Check(event)) {
    const first = busEventCheck.Errors(event).First()
    return first === undefined ? 'not a bucket event' : `${first.path || '/'}: ${first.message}`
  }
  const { bucket } = event
  if (bucket.ticker !== series.ticker || bucket.resolution !== series.resolution) return 'bucket of another series'
  if (bucketStart(bucket.start, bucket.resolution) !== bucket.start) return 'bucket start not aligned to its resolution'
  return undefined
}

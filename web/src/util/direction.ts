import type { Bucket } from '../store/model.js'

export type Direction = 'up' | 'down' | 'flat'

/** Changes smaller than this read as flat: sentiment scores are noisy. */
const FLAT_BAND = 0.02

/**
 * Direction of sentiment: the newest bucket's average against the one before it,
 * or within the bucket (close against open) when it is the only one.
 */
export function directionOf (latest: Bucket | undefined, previous: Bucket | undefined): Direction | undefined {
  if (latest === undefined) return undefined
  const delta = previous === undefined ? latest.close - latest.open : latest.avg - previous.avg
  if (delta > FLAT_BAND) return 'up'
  if (delta < -FLAT_BAND) return 'down'
  return 'flat'
}

/** Arrow and word, so direction never relies on colour. */
export const DIRECTION_TEXT: Readonly<Record<Direction, { arrow: string, word: string }>> = {
  up: { arrow: '▲', word: 'rising' },
  down: { arrow: '▼', word: 'falling' },
  flat: { arrow: '▶', word: 'steady' }
}

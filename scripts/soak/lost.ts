import { ScanCommand } from '@aws-sdk/lib-dynamodb'
import pLimit from 'p-limit'
import { itemToBucket } from '../../shared/adapters/dynamo/bucket-item.js'
import type { DynamoClients } from '../../shared/adapters/dynamo/client.js'
import { tableName } from '../../shared/adapters/dynamo/table.js'
import { type Aggregate, type Bucket, groupByBucket, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { bucketId, type BucketRef, seriesKey } from '../../shared/timeseries/keys.js'
import { bucketStart, DURATION_MS, isRetained, RESOLUTIONS, RETENTION_MS, toIsoSecond } from '../../shared/timeseries/resolutions.js'
import { differences, expectedBuckets } from '../../test/helpers/expected.js'
import type { SoakSystem } from './topology.js'

/**
 * Buckets whose retention ends this close to a read are left out of the comparison: the
 * store may or may not have dropped them yet, and either is right.
 */
const EDGE_MS = 3000
/** Problems listed in full; the rest are counted. */
const SHOWN = 10

/** What one store holds against the fold of the accepted items. */
export interface LossReport {
  store: 'archive' | 'history'
  /** Buckets compared (retained throughout the read). */
  compared: number
  /** Buckets touched by items whose ingest never got a 202 (they may or may not be folded). */
  unverifiable: number
  /** Missing, extra or different buckets; empty: nothing lost and nothing counted twice. */
  problems: string[]
}

/** A bucket as a store returned it: the merge-law fields and where it belongs. */
type HeldBucket = BucketRef & NonNullable<Parameters<typeof differences>[0]>

type Expected = Map<string, { ref: BucketRef, aggregate: Aggregate }>

function uncertainIds (uncertain: readonly ScoredItem[], now: number): Set<string> {
  return new Set([...groupByBucket(uncertain, now).values()].map((g) => bucketId(g.ref)))
}

/** Compares `held` (the store's buckets of one read, by bucket id) with the expected fold. */
function compare (report: LossReport, expected: Expected, held: Map<string, HeldBucket>, inScope: (ref: BucketRef) => boolean, unsure: Set<string>, readStart: number, readEnd: number): void {
  const verdict = (id: string, ref: BucketRef): 'compare' | 'skip' | 'unverifiable' => {
    if (!inScope(ref)) return 'skip'
    const sure = isRetained(ref.start, ref.resolution, readEnd + EDGE_MS)
    const gone = !isRetained(ref.start, ref.resolution, readStart - EDGE_MS)
    if (!sure || gone) return 'skip'
    return unsure.has(id) ? 'unverifiable' : 'compare'
  }
  for (const [id, want] of expected) {
    const v = verdict(id, want.ref)
    if (v === 'unverifiable') report.unverifiable++
    if (v !== 'compare') continue
    report.compared++
    const problems = differences(held.get(id), want.aggregate)
    if (problems.length > 0) report.problems.push(`${id}: ${problems.join(', ')}`)
  }
  for (const [id, bucket] of held) {
    if (expected.has(id) || verdict(id, bucket) !== 'compare') continue
    report.problems.push(`${id}: held but no accepted item makes it (count ${String(bucket.count)})`)
  }
}

function shorten (report: LossReport): LossReport {
  if (report.problems.length > SHOWN) report.problems = [...report.problems.slice(0, SHOWN), `… and ${report.problems.length - SHOWN} more`]
  return report
}

/** Every row of the archive that is still within retention equals the fold of its accepted items, and no accepted item's bucket is missing. */
export async function checkArchive (system: SoakSystem, dynamo: DynamoClients, ledger: readonly ScoredItem[], uncertain: readonly ScoredItem[]): Promise<LossReport> {
  const readStart = Date.now()
  const held = new Map<string, Bucket>()
  let start: Record<string, unknown> | undefined
  do {
    const page = await dynamo.doc.send(new ScanCommand({ TableName: tableName(system.env), ExclusiveStartKey: start }))
    for (const raw of page.Items ?? []) {
      // Rows of Pulse's own bookkeeping (the term counter, the probe) start with '#'; buckets with a ticker.
      if (String(raw.PK).startsWith('#')) continue
      const bucket = itemToBucket(raw)
      held.set(bucketId(bucket), bucket)
    }
    start = page.LastEvaluatedKey
  } while (start !== undefined)
  const readEnd = Date.now()
  const report: LossReport = { store: 'archive', compared: 0, unverifiable: 0, problems: [] }
  compare(report, expectedBuckets(ledger, readStart - EDGE_MS), held, () => true, uncertainIds(uncertain, readStart - EDGE_MS), readStart, readEnd)
  return shorten(report)
}

type WireBucket = NonNullable<Parameters<typeof differences>[0]> & { timestamp: string }

interface HistoryAnswer {
  buckets: WireBucket[]
  partial_bucket: WireBucket | null
}

/**
 * `GET /api/v2/timeseries` of every ticker and resolution (over the gateways in turn)
 * equals the fold of the accepted items, bucket for bucket, the partial bucket included.
 */
export async function checkHistory (system: SoakSystem, tickers: readonly string[], ledger: readonly ScoredItem[], uncertain: readonly ScoredItem[]): Promise<LossReport> {
  const report: LossReport = { store: 'history', compared: 0, unverifiable: 0, problems: [] }
  const firstRead = Date.now()
  const bySeries = new Map<string, Expected>()
  for (const [id, want] of expectedBuckets(ledger, firstRead - EDGE_MS)) {
    const key = seriesKey(want.ref.ticker, want.ref.resolution)
    const series = bySeries.get(key) ?? new Map()
    series.set(id, want)
    bySeries.set(key, series)
  }
  const unsure = uncertainIds(uncertain, firstRead - EDGE_MS)
  const limit = pLimit(6)
  let next = 0
  await Promise.all(tickers.flatMap((ticker) => RESOLUTIONS.map(async (resolution) => await limit(async () => {
    const gateway = system.gateways[next++ % system.gateways.length]
    const readStart = Date.now()
    const from = bucketStart(readStart - RETENTION_MS[resolution] - DURATION_MS[resolution], resolution)
    const res = await fetch(`${gateway?.url ?? ''}/api/v2/timeseries/${ticker}?resolution=${resolution}&start=${toIsoSecond(from)}`)
    if (res.status !== 200) {
      report.problems.push(`${ticker}#${resolution}: history answered ${res.status}`)
      return
    }
    const answer = await res.json() as HistoryAnswer
    const readEnd = Date.now()
    const held = new Map<string, HeldBucket>()
    for (const bucket of [...answer.buckets, ...(answer.partial_bucket === null ? [] : [answer.partial_bucket])]) {
      const start = Date.parse(bucket.timestamp)
      held.set(`${ticker}#${resolution}@${start}`, { ...bucket, ticker, resolution, start })
    }
    compare(report, bySeries.get(seriesKey(ticker, resolution)) ?? new Map(), held, (ref) => ref.start >= from, unsure, readStart, readEnd)
  }))))
  return shorten(report)
}

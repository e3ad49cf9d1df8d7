import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { ScoredItem } from '../../shared/timeseries/bucket.js'
import { expectedBuckets } from '../helpers/expected.js'
import { makeItems, postOnce, startFaultCluster, waitForArchive, waitForHot } from '../helpers/fault-cluster.js'

const TICKERS = ['AAPL', 'MSFT']
/**
 * The outage lasts 20 s, not 60: the write-behind's backoff doubles from the flush interval
 * (0.5 s here) and is capped at 30 s, so by 20 s it already waits ~16 s between tries —
 * the recovery path (long backoff, then the whole backlog at once) is the same as after
 * 60 s, and ingest, history and the dirty-set bound are checked on every second of it.
 */
const OUTAGE_MS = 20_000

t.test('DynamoDB unreachable for 20 s: ingest accepted, recent history served, Redis bounded, backlog written after', async (t) => {
  const cluster = await startFaultCluster(t, { tickers: TICKERS, gateways: 1, workers: 1 })
  const [gateway] = cluster.gateways
  if (gateway === undefined) throw new Error('cluster did not start')
  const now = Date.now()
  // Items of the last 20 minutes: the buckets exist before the outage (so folds need no
  // archive read); the outage adds items to them.
  const before = makeItems('d', 1000, TICKERS, now, 1200)
  for (let i = 0; i < before.length; i += 250) t.equal(await postOnce(gateway, before.slice(i, i + 250)), 202)
  const accepted: ScoredItem[] = [...before]
  t.same((await waitForArchive(cluster, accepted, 30_000)).problems.slice(0, 5), [], 'before the outage: DynamoDB holds everything')
  for (const ticker of TICKERS) await fetch(`${gateway.url}/api/v2/timeseries/${ticker}?resolution=1m`).then(async (r) => await r.arrayBuffer())

  await cluster.dynalite.kill('SIGKILL')
  const started = Date.now()
  t.comment('dynalite SIGKILLed: DynamoDB endpoint unreachable')
  const statuses = new Map<number, number>()
  let historyOk = 0
  let historyExact = 0
  let maxDirty = 0
  let overBound = 0
  let round = 0
  const distinct = (): number => expectedBuckets(accepted, Date.now()).size
  while (Date.now() - started < OUTAGE_MS) {
    const batch = makeItems(`o${round++}-`, 100, TICKERS, now, 1200)
    const status = await postOnce(gateway, batch)
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
    if (status === 202) accepted.push(...batch)
    await sleep(300)
    const res = await fetch(`${gateway.url}/api/v2/timeseries/AAPL?resolution=1m`)
    if (res.status === 200) {
      historyOk++
      const body = await res.json() as { buckets: Array<{ count: number }>, partial_bucket: { count: number } | null }
      const served = [...body.buckets, ...(body.partial_bucket === null ? [] : [body.partial_bucket])].reduce((n, b) => n + b.count, 0)
      const folded = (await cluster.hot.range('AAPL', '1m', now - 3_600_000, now + 3_600_000)).reduce((n, b) => n + b.count, 0)
      if (served === folded) historyExact++
    } else await res.arrayBuffer()
    const dirty = await cluster.hot.dirtyCount()
    maxDirty = Math.max(maxDirty, dirty)
    if (dirty > distinct()) overBound++
    await sleep(400)
  }
  t.comment(`during the ${OUTAGE_MS / 1000} s outage: ingest statuses ${JSON.stringify(Object.fromEntries(statuses))}, history 200 on ${historyOk} of ${round} tries (${historyExact} equal to Redis at that moment), dirty set peaked at ${maxDirty} of ${distinct()} distinct buckets`)
  t.same([...statuses.keys()], [202], 'every batch during the outage was accepted (202)')
  t.equal(historyOk, round, 'recent history was served on every try')
  t.ok(historyExact >= round - 2, 'history kept up with the folds (allowing a fold in flight)')
  t.equal(overBound, 0, 'the dirty set never held more entries than there are distinct buckets')
  t.ok(maxDirty > 0 && maxDirty <= distinct(), `the backlog is bounded by distinct buckets (${maxDirty} ≤ ${distinct()}), not by items (${accepted.length})`)
  t.same((await waitForHot(cluster, accepted, 20_000)).problems.slice(0, 5), [], 'Redis holds the fold of every accepted item during the outage')

  await cluster.dynalite.start()
  const back = Date.now()
  t.comment('dynalite restarted on the same port and data directory')
  const archived = await waitForArchive(cluster, accepted, 45_000)
  t.same(archived.problems.slice(0, 5), [], `after it returned: all ${archived.buckets} buckets in DynamoDB equal the fold of every accepted item (${Date.now() - back} ms)`)
  t.equal(await cluster.hot.dirtyCount(), 0, 'the dirty set drained')
})

import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { ScoredItem } from '../../shared/timeseries/bucket.js'
import { compare, makeItems, postUntilAccepted, readBoth, startFaultCluster, waitForArchive, waitForHot } from '../helpers/fault-cluster.js'

const TICKERS = ['AAPL', 'MSFT', 'NVDA', 'TSLA']

t.test('a worker SIGKILLed in the middle of 12,000 items: every bucket in Redis and DynamoDB equals the fold of all accepted items', async (t) => {
  const cluster = await startFaultCluster(t, { tickers: TICKERS, gateways: 1, workers: 2 })
  const [gateway] = cluster.gateways
  const [workerA, workerB] = cluster.workers
  if (gateway === undefined || workerA === undefined || workerB === undefined) throw new Error('cluster did not start')

  const fresh = makeItems('k', 12_000, TICKERS, Date.now())
  // 5% are resent later (exact copies, as a producer retrying would): dedupe must hold across the crash too.
  // Copies with other content are not used: which copy is "first" is only defined when
  // batches are folded in acceptance order, which parallel workers and retries do not promise.
  const resends = fresh.filter((_, i) => i % 20 === 0).map((item) => ({ ...item }))
  const items: ScoredItem[] = [...fresh, ...resends]
  const batches: ScoredItem[][] = []
  for (let i = 0; i < items.length; i += 250) batches.push(items.slice(i, i + 250))

  let killedWhileBusy = false
  const started = Date.now()
  for (let i = 0; i < batches.length; i++) {
    if (i === Math.floor(batches.length * 0.4)) {
      // Kill while folded work waits for the write-behind: wait until the workers have folded some.
      const deadline = Date.now() + 15_000
      let counts = await cluster.hot.dirtyCount()
      while (counts === 0 && Date.now() < deadline) {
        await sleep(20)
        counts = await cluster.hot.dirtyCount()
      }
      await workerA.kill('SIGKILL')
      killedWhileBusy = counts > 0
      t.comment(`worker A SIGKILLed after ${i} of ${batches.length} batches (dirty buckets at that moment: ${counts})`)
    }
    if (i === Math.floor(batches.length * 0.7)) {
      await workerA.start()
      t.comment('worker A restarted')
    }
    await postUntilAccepted(gateway, batches[i] as ScoredItem[])
  }
  t.comment(`posted ${items.length} items (${resends.length} resends) in ${batches.length} batches, all 202, in ${Date.now() - started} ms`)
  t.ok(killedWhileBusy, 'the worker was killed while work was in flight')

  const posted = Date.now()
  const hot = await waitForHot(cluster, items, 90_000)
  t.comment(`Redis converged ${Date.now() - posted} ms after the last 202`)
  t.same(hot.problems.slice(0, 20), [], `all ${hot.buckets} buckets in Redis equal the fold of the first copy of every accepted item`)
  const archive = await waitForArchive(cluster, items, 60_000)
  t.comment(`DynamoDB converged ${Date.now() - posted} ms after the last 202`)
  t.same(archive.problems.slice(0, 20), [], `all ${archive.buckets} buckets in DynamoDB equal the same fold`)

  // Nothing more happens later: a late retry of a killed batch must not count twice.
  await sleep(3000)
  const after = await readBoth(cluster, items)
  t.same(compare(items, after.hot).problems.slice(0, 5), [], 'still exact in Redis 3 s later (no late double count)')
  t.same(compare(items, after.archive).problems.slice(0, 5), [], 'still exact in DynamoDB 3 s later')
  await workerB.stop()
})

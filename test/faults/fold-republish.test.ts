import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { bucketStart, labelFor, type ScoredItem, toIsoSecond } from '../../shared/timeseries/index.js'
import { postUntilAccepted, startFaultCluster } from '../helpers/fault-cluster.js'
import { startPulseProcess } from '../helpers/processes.js'
import { WsWatcher } from '../helpers/ws-watcher.js'

function alive (pid: number | undefined): boolean {
  if (pid === undefined) return false
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function until<T> (check: () => Promise<T | undefined> | T | undefined, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

t.test('a worker killed after its fold and before the publish: the retry on another worker sends subscribers the exact state', async (t) => {
  // 24h and 6h buckets do not end during the test, so no finalizer event can stand in for the retry's.
  const resolutions = ['24h', '6h'] as const
  const cluster = await startFaultCluster(t, { tickers: ['META'], gateways: 1, workers: 0 })
  const [gateway] = cluster.gateways
  if (gateway === undefined) throw new Error('no gateway')
  const doomed = await startPulseProcess(t, { role: 'worker', env: { ...cluster.env, PULSE_FAULTS: 'fold.before-publish=kill' } })

  const watcher = new WsWatcher()
  t.teardown(() => watcher.close())
  await watcher.connect(gateway.url, ['META'], [...resolutions])

  const now = Date.now()
  const items: ScoredItem[] = Array.from({ length: 20 }, (_, i) => {
    const score = Math.round(Math.sin(i) * 1000) / 1000
    return { id: `r${i}`, ticker: 'META', ts: now - i * 1000, score, label: labelFor(score), source: 'tiingo' }
  })
  await postUntilAccepted(gateway, items)

  const refs = resolutions.map((resolution) => ({ ticker: 'META', resolution, start: bucketStart(now, resolution) }))
  await until(() => alive(doomed.pid()) ? undefined : true, 60_000, 'the worker to kill itself before publishing')
  const folded = await cluster.hot.get(refs)
  t.same(folded.map((b) => b.count), [20, 20], 'the killed worker had folded the batch into Redis')
  t.equal(watcher.latest.size, 0, 'and nothing was published')

  // The job's lock runs out (QUEUE_LOCK_MS) and another worker takes the batch over.
  await startPulseProcess(t, { role: 'worker', env: cluster.env })
  const received = await until(() => {
    const got = refs.map((ref) => watcher.latest.get(WsWatcher.key(ref.ticker, ref.resolution, toIsoSecond(ref.start))))
    return got.every((b) => b !== undefined) ? got : undefined
  }, 60_000, 'the retried batch to reach the subscriber').catch(() => undefined)
  t.ok(received !== undefined, 'the subscriber received both buckets after the retry')
  const current = await cluster.hot.get(refs)
  for (const [i, bucket] of current.entries()) {
    const streamed = received?.[i]
    t.same(
      streamed === undefined ? undefined : { count: streamed.count, sum: streamed.sum, open: streamed.open, close: streamed.close, rev: streamed.rev },
      { count: bucket.count, sum: bucket.sum, open: bucket.open, close: bucket.close, rev: bucket.rev },
      `${bucket.resolution}: the streamed bucket is the stored one`
    )
  }
  t.same(current.map((b) => b.count), [20, 20], 'the retry counted nothing twice')
})

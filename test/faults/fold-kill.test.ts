import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { RedisBus } from '../../shared/adapters/redis/redis-bus.js'
import type { BucketEvent } from '../../shared/ports/bus.js'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { bucketId, seriesKey } from '../../shared/timeseries/keys.js'
import { bucketStart, toIsoSecond } from '../../shared/timeseries/resolutions.js'
import { postUntilAccepted, startFaultCluster } from '../helpers/fault-cluster.js'
import { startPulseProcess } from '../helpers/processes.js'
import { metricValue, parsePrometheus } from '../helpers/prometheus.js'
import { type StreamedBucket, WsWatcher } from '../helpers/ws-watcher.js'

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

t.test('a worker killed right after its fold: subscribers already hold the exact state, and the retry on another worker sends nothing twice', async (t) => {
  // 24h and 6h buckets do not end during the test, so no finalizer event can stand in for the fold's.
  const resolutions = ['24h', '6h'] as const
  const cluster = await startFaultCluster(t, { tickers: ['META'], gateways: 1, workers: 0 })
  const [gateway] = cluster.gateways
  if (gateway === undefined) throw new Error('no gateway')
  const doomed = await startPulseProcess(t, { role: 'worker', env: { ...cluster.env, PULSE_FAULTS: 'fold.after=kill' } })

  const watcher = new WsWatcher()
  t.teardown(() => watcher.close())
  await watcher.connect(gateway.url, ['META'], [...resolutions])
  // Every message on the two series channels, as a gateway's bus hears them.
  const bus = new RedisBus({ url: cluster.env.REDIS_URL as string, env: cluster.env.PULSE_ENV as string })
  t.teardown(() => bus.close())
  const messages: BucketEvent[] = []
  for (const resolution of resolutions) await bus.subscribe(seriesKey('META', resolution), (event) => { messages.push(event) })

  const now = Date.now()
  const items: ScoredItem[] = Array.from({ length: 20 }, (_, i) => {
    const score = Math.round(Math.sin(i) * 1000) / 1000
    return { id: `r${i}`, ticker: 'META', ts: now - i * 1000, score, label: labelFor(score), source: 'tiingo' }
  })
  await postUntilAccepted(gateway, items)

  const refs = resolutions.map((resolution) => ({ ticker: 'META', resolution, start: bucketStart(now, resolution) }))
  await until(() => alive(doomed.pid()) ? undefined : true, 60_000, 'the worker to kill itself after its fold')
  const folded = await cluster.hot.get(refs)
  t.same(folded.map((b) => b.count), [20, 20], 'the killed worker had folded the batch into Redis')
  const streamedOf = (): Array<StreamedBucket | undefined> => refs.map((ref) => watcher.latest.get(WsWatcher.key(ref.ticker, ref.resolution, toIsoSecond(ref.start))))
  const beforeRetry = await until(() => {
    const got = streamedOf()
    return got.every((b) => b !== undefined) ? got : undefined
  }, 15_000, 'the fold\'s own publication to reach the subscriber').catch(() => undefined)
  t.ok(beforeRetry !== undefined, 'the subscriber holds both buckets before any other worker ran: the fold published them')

  // The job's lock runs out (QUEUE_LOCK_MS) and another worker takes the batch over: all duplicates.
  const rescuer = await startPulseProcess(t, { role: 'worker', env: cluster.env })
  await until(async () => {
    const samples = parsePrometheus(await (await fetch(`${rescuer.url}/metrics`)).text())
    return (metricValue(samples, 'pulse_folded_items_total') ?? 0) >= items.length ? true : undefined
  }, 60_000, 'the retried batch to be folded again')
  await sleep(500)

  const current = await cluster.hot.get(refs)
  t.same(current.map((b) => b.count), [20, 20], 'the retry counted nothing twice')
  t.same(current.map((b) => b.rev), folded.map((b) => b.rev), 'and changed nothing')
  for (const [i, bucket] of current.entries()) {
    const streamed = streamedOf()[i]
    t.same(
      streamed === undefined ? undefined : { count: streamed.count, sum: streamed.sum, open: streamed.open, close: streamed.close, rev: streamed.rev },
      { count: bucket.count, sum: bucket.sum, open: bucket.open, close: bucket.close, rev: bucket.rev },
      `${bucket.resolution}: the client converged on the stored bucket`
    )
    const heard = messages.filter((m) => bucketId(m.bucket) === bucketId(bucket))
    t.equal(heard.length, 1, `${bucket.resolution}: published once, by the fold; the retry sent nothing again`)
  }
})

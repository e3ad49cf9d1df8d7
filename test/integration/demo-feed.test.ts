import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { BACKFILL_SPAN_MS } from '../../services/aggregator/demo-feed.js'
import { RESOLUTIONS } from '../../shared/timeseries/index.js'
import { startPulseProcess } from '../helpers/processes.js'
import { metricValue, parsePrometheus } from '../helpers/prometheus.js'
import { eventually, startTestPulse, type TestPulse } from '../helpers/pulse.js'

const TICKERS = 'AAPL,MSFT'

/** Articles in the 1h buckets of `ticker` that start before `before`: the history only, not live items. */
async function historyCount (p: TestPulse, ticker: string, before: number): Promise<number> {
  const { body } = await p.get(`/api/v2/timeseries/${ticker}?resolution=1h`)
  return (body.buckets as Array<{ timestamp: string, count: number }>)
    .filter((b) => Date.parse(b.timestamp) < before)
    .reduce((sum, b) => sum + b.count, 0)
}

t.test('the demo feed fills every ticker with live data; DEMO_FEED=0 keeps it quiet', async (t) => {
  const live = await startTestPulse(t, { DEMO_FEED: '1', TICKERS })
  const tickers = await eventually(async () => {
    const { body } = await live.get('/api/v2/tickers')
    return body.tickers.every((x: { partial_1m: unknown }) => x.partial_1m !== null) ? body.tickers : undefined
  }, 15_000, 'demo data on both tickers')
  t.equal(tickers.length, 2)
  const quiet = await startTestPulse(t, { DEMO_FEED: '0', TICKERS })
  t.equal(quiet.pulse.demo, undefined, 'no feed runs')
  const { body } = await quiet.get('/api/v2/tickers')
  t.ok(body.tickers.every((x: { partial_1m: unknown }) => x.partial_1m === null), 'no items without the feed')
})

t.test('an empty store gets 7 days of demo history at every resolution, and a restart does not add it twice', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pulse-demo-'))
  t.teardown(async () => await rm(dataDir, { recursive: true, force: true }))
  const started = Date.now()
  const first = await startTestPulse(t, { DEMO_FEED: '1', TICKERS, DATA_DIR: dataDir })
  const report = await (first.pulse.demo as NonNullable<typeof first.pulse.demo>).backfill
  t.equal(report.filled, 2, 'both tickers were empty')
  t.ok(report.items > 500, `a history was queued (${report.items} items)`)
  t.comment(`backfill: ${report.items} items for ${report.filled} tickers queued ${Date.now() - started} ms after start`)

  // Every resolution draws a real chart: several buckets each, and none older than 7 days.
  for (const resolution of RESOLUTIONS) {
    const buckets = await eventually(async () => {
      const { body } = await first.get(`/api/v2/timeseries/AAPL?resolution=${resolution}`)
      const all = body.buckets as Array<{ timestamp: string }>
      return all.length >= 5 ? all : undefined
    }, 30_000, `AAPL ${resolution} history`)
    const oldest = Date.parse((buckets[0] as { timestamp: string }).timestamp)
    t.ok(oldest >= started - BACKFILL_SPAN_MS - 86_400_000, `${resolution}: ${buckets.length} buckets, none before the 7 days`)
  }
  // The history ends before the last hour began; what is in those buckets now is the whole backfill.
  const cut = started - 3_600_000
  const total = await eventually(async () => {
    const [a, b] = [await historyCount(first, 'AAPL', cut), await historyCount(first, 'MSFT', cut)]
    return a > 0 && b > 0 && (await first.pulse.adapters.queue.counts()).waiting === 0 ? a + b : undefined
  }, 30_000, 'the history folded')
  await first.pulse.close()

  const second = await startTestPulse(t, { DEMO_FEED: '1', TICKERS, DATA_DIR: dataDir })
  const again = await (second.pulse.demo as NonNullable<typeof second.pulse.demo>).backfill
  t.same(again, { filled: 0, skipped: 2, items: 0 }, 'the restart finds the history and queues none')
  await eventually(async () => (await second.pulse.adapters.queue.counts()).waiting === 0 ? true : undefined, 30_000, 'the queue drained')
  const after = await historyCount(second, 'AAPL', cut) + await historyCount(second, 'MSFT', cut)
  t.equal(after, total, `the history counts the same after the restart (${after} articles)`)
})

t.test('killed after queuing history, restarted while the replay is still folding: the history is not queued again', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pulse-demo-kill-'))
  t.teardown(async () => await rm(dataDir, { recursive: true, force: true }))
  const started = Date.now()
  // The history check waits until the gateway is up, then the process dies right after the first batch is durable.
  const first = await startPulseProcess(t, {
    role: 'all',
    env: { DEMO_FEED: '1', TICKERS, DATA_DIR: dataDir, PULSE_FAULTS: 'demo.before-history-check=delay:4000,demo.backfill-queued=kill@1' }
  })
  await eventually(async () => await fetch(`${first.url}/healthz`).then(() => undefined, () => true), 60_000, 'the process killed itself')
  t.notMatch(first.output(), /demo history queued/, 'killed before the backfill finished')

  // On restart the journal replays that batch; its fold is held, so the history check runs while it is pending.
  const second = await startPulseProcess(t, {
    role: 'all',
    env: { DEMO_FEED: '1', TICKERS, DATA_DIR: dataDir, PULSE_FAULTS: 'aggregator.before-fold=delay:3000@1' }
  })
  await eventually(async () => /demo history (queued|not needed)/.test(second.output()) ? true : undefined, 60_000, 'the backfill decision')
  t.match(second.output(), /demo history not needed/, 'the replayed batch counts as history')
  const cut = started - 3_600_000
  const count = async (ticker: string): Promise<number> => {
    const body = await (await fetch(`${second.url}/api/v2/timeseries/${ticker}?resolution=1h`)).json() as { buckets: Array<{ timestamp: string, count: number }> }
    return body.buckets.filter((b) => Date.parse(b.timestamp) < cut).reduce((sum, b) => sum + b.count, 0)
  }
  // Read once the queue is empty: whatever was queued (the replay, any second history) is folded by then.
  const history = await eventually(async () => {
    const samples = parsePrometheus(await (await fetch(`${second.url}/metrics`)).text())
    const pending = (metricValue(samples, 'pulse_queue_jobs', { state: 'waiting' }) ?? 1) + (metricValue(samples, 'pulse_queue_jobs', { state: 'active' }) ?? 1)
    if (pending > 0) return undefined
    const total = await count('AAPL') + await count('MSFT')
    return total > 0 ? total : undefined
  }, 30_000, 'the replayed history')
  t.ok(history <= 1000, `only the one queued batch is there (${history} articles before the last hour)`)
})

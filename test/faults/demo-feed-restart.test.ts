import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startPulseProcess } from '../helpers/processes.js'
import { metricValue, parsePrometheus } from '../helpers/prometheus.js'
import { eventually } from '../helpers/pulse.js'

const TICKERS = 'AAPL,MSFT'

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

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { BACKFILL_SPAN_MS } from '../../services/aggregator/demo-feed.js'
import { RESOLUTIONS } from '../../shared/timeseries/resolutions.js'
import { eventually, startTestPulse, type TestPulse } from '../helpers/pulse.js'

const TICKERS = 'AAPL,MSFT'

/**
 * Articles in the 1h buckets of `ticker` that start in [`from`, `before`): the history only,
 * not live items, and clear of the 7-day retention edge, where the oldest hour drops out
 * while the test runs.
 */
async function historyCount (p: TestPulse, ticker: string, from: number, before: number): Promise<number> {
  const { body } = await p.get(`/api/v2/timeseries/${ticker}?resolution=1h`)
  return (body.buckets as Array<{ timestamp: string, count: number }>)
    .filter((b) => Date.parse(b.timestamp) >= from && Date.parse(b.timestamp) < before)
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
  const from = started - BACKFILL_SPAN_MS + 2 * 3_600_000
  const total = await eventually(async () => {
    const [a, b] = [await historyCount(first, 'AAPL', from, cut), await historyCount(first, 'MSFT', from, cut)]
    return a > 0 && b > 0 && (await first.pulse.adapters.queue.counts()).waiting === 0 ? a + b : undefined
  }, 30_000, 'the history folded')
  await first.pulse.close()

  const second = await startTestPulse(t, { DEMO_FEED: '1', TICKERS, DATA_DIR: dataDir })
  const again = await (second.pulse.demo as NonNullable<typeof second.pulse.demo>).backfill
  t.same(again, { filled: 0, skipped: 2, items: 0 }, 'the restart finds the history and queues none')
  await eventually(async () => (await second.pulse.adapters.queue.counts()).waiting === 0 ? true : undefined, 30_000, 'the queue drained')
  const after = await historyCount(second, 'AAPL', from, cut) + await historyCount(second, 'MSFT', from, cut)
  t.equal(after, total, `the history counts the same after the restart (${after} articles)`)
})

import t from 'tap'
import { MemoryBus } from '../../shared/adapters/memory/memory-bus.js'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import type { BucketEvent } from '../../shared/ports/bus.js'
import type { ScoredItem } from '../../shared/timeseries/bucket.js'
import { bucketId, seriesKey } from '../../shared/timeseries/keys.js'
import { RESOLUTIONS, toIsoSecond } from '../../shared/timeseries/resolutions.js'
import { Finalizer } from '../../services/aggregator/finalizer.js'
import { foldWithTerm } from '../helpers/fold-with-term.js'

const at = (iso: string) => Date.parse(iso)
let ids = 0

function item (ticker: string, iso: string, score = 0.3): ScoredItem {
  return { id: `i${ids++}`, ticker, ts: at(iso), score, label: 'positive', source: 'tiingo' }
}

async function setup (t: { teardown: (fn: () => unknown) => void }, tickers = ['AAPL', 'MSFT']) {
  // The flush bookkeeping follows the simulated time of the last fold.
  let clock = 0
  const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000, now: () => clock })
  const bus = new MemoryBus()
  const events: BucketEvent[] = []
  for (const ticker of [...tickers, 'TSLA']) {
    for (const resolution of RESOLUTIONS) await bus.subscribe(seriesKey(ticker, resolution), (event) => events.push(event))
  }
  const finalizer = new Finalizer({ hot, bus, tickers, log: { warn: () => {} } })
  t.teardown(() => finalizer.stop())
  const fold = async (ticker: string, items: ScoredItem[], now: number) => {
    clock = now
    const outcome = await foldWithTerm(hot, ticker, items, { now })
    if (outcome.kind === 'needs-load') {
      await hot.seed(outcome.refs, [])
      await foldWithTerm(hot, ticker, items, { now })
    }
  }
  /** Marks everything written, as a flush would. */
  const flush = async () => { await hot.markClean(await hot.takeDirty(Infinity)) }
  /** Final events so far, as `resolution@start`, after the bus delivered them. */
  const finals = async () => {
    await new Promise((resolve) => setImmediate(resolve))
    return events.splice(0).map((e) => `${e.kind}:${e.bucket.ticker}#${e.bucket.resolution}@${toIsoSecond(e.bucket.start)}`).sort()
  }
  return { hot, bus, finalizer, fold, flush, finals }
}

t.test('a run finalizes the buckets that ended since the previous run, once', async (t) => {
  const { hot, finalizer, fold, flush, finals } = await setup(t)
  await fold('AAPL', [item('AAPL', '2025-12-21T10:34:10Z'), item('AAPL', '2025-12-21T10:33:10Z')], at('2025-12-21T10:34:30Z'))
  await fold('TSLA', [item('TSLA', '2025-12-21T10:34:10Z')], at('2025-12-21T10:34:30Z'))
  await flush()

  const first = await finalizer.runOnce(at('2025-12-21T10:35:00.050Z'))
  t.same([first.from, first.to], [at('2025-12-21T10:33:00Z'), at('2025-12-21T10:35:00Z')], 'first run looks back two intervals')
  t.same(await finals(), [
    'final:AAPL#1m@2025-12-21T10:33:00Z',
    'final:AAPL#1m@2025-12-21T10:34:00Z',
    'final:AAPL#5m@2025-12-21T10:30:00Z'
  ], 'ended buckets of configured tickers only')
  t.equal(first.rewritten, 2)
  const dirty = (await hot.takeDirty(10)).map(bucketId).sort()
  t.same(dirty, ['AAPL#1m@1766313240000', 'AAPL#5m@1766313000000'],
    'their final state goes to the write-behind; 10:33 changed at 10:34:30, after its end, so was already final')

  const again = await finalizer.runOnce(at('2025-12-21T10:35:20Z'))
  t.equal(again.finalized, 0, 'the same minute again finalizes nothing')
  t.same(await finals(), [])

  await finalizer.runOnce(at('2025-12-21T10:40:00.100Z'))
  t.same(await finals(), ['final:AAPL#10m@2025-12-21T10:30:00Z'], 'the next window picks up where the last ended')
})

t.test('a bucket changed after its end is published but not rewritten', async (t) => {
  const { hot, finalizer, fold, flush, finals } = await setup(t)
  await fold('MSFT', [item('MSFT', '2025-12-21T10:34:10Z')], at('2025-12-21T10:34:20Z'))
  await fold('MSFT', [item('MSFT', '2025-12-21T10:34:50Z')], at('2025-12-21T10:35:00.010Z'))
  await flush()
  const report = await finalizer.runOnce(at('2025-12-21T10:35:00.050Z'))
  t.same(await finals(), ['final:MSFT#1m@2025-12-21T10:34:00Z', 'final:MSFT#5m@2025-12-21T10:30:00Z'])
  t.equal(report.rewritten, 0, 'the write-behind already wrote a state from after the end')
  t.equal(await hot.dirtyCount(), 0)
})

t.test('the 24h bucket is finalized at midnight UTC, with every shorter one ending then', async (t) => {
  const { finalizer, fold, flush, finals } = await setup(t)
  await fold('AAPL', [item('AAPL', '2025-12-21T23:59:30Z')], at('2025-12-21T23:59:40Z'))
  await flush()
  await finalizer.runOnce(at('2025-12-22T00:00:00.050Z'))
  t.same(await finals(), ['1m', '5m', '10m', '1h', '3h', '6h', '12h', '24h'].map((r) => {
    const start = { '1m': '23:59', '5m': '23:55', '10m': '23:50', '1h': '23:00', '3h': '21:00', '6h': '18:00', '12h': '12:00', '24h': '00:00' }[r]
    return `final:AAPL#${r}@2025-12-21T${start}:00Z`
  }).sort())
})

t.test('catch-up after a pause covers the gap, capped at maxCatchUpMs; since overrides', async (t) => {
  const { finalizer, fold, flush, finals } = await setup(t)
  await fold('AAPL', [item('AAPL', '2025-12-21T10:20:10Z'), item('AAPL', '2025-12-21T10:40:10Z')], at('2025-12-21T10:41:00Z'))
  await flush()
  await finalizer.runOnce(at('2025-12-21T10:22:00Z'))
  t.same(await finals(), ['final:AAPL#1m@2025-12-21T10:20:00Z'])
  await finalizer.runOnce(at('2025-12-21T10:45:00Z'))
  t.same(await finals(), [
    'final:AAPL#10m@2025-12-21T10:20:00Z',
    'final:AAPL#1m@2025-12-21T10:40:00Z',
    'final:AAPL#5m@2025-12-21T10:20:00Z',
    'final:AAPL#5m@2025-12-21T10:40:00Z'
  ], 'everything that ended while no run happened')
  const report = await finalizer.runOnce(at('2025-12-21T10:45:00Z'), 0)
  t.equal(report.from, at('2025-12-20T10:45:00Z'), 'a window never spans more than 24h')
  t.equal(report.finalized, 5, 'an explicit since re-finalizes, idempotently')
  await finals()
})

t.test('the timer runs just after each interval boundary and stops', async (t) => {
  const { hot, bus, fold, finals } = await setup(t)
  await fold('AAPL', [item('AAPL', '2025-12-21T10:34:10Z')], at('2025-12-21T10:34:20Z'))
  const clock = at('2025-12-21T10:35:00.080Z')
  const timed = new Finalizer({ hot, bus, tickers: ['AAPL'], log: { warn: () => {} }, intervalMs: 100, now: () => clock })
  t.teardown(() => timed.stop())
  timed.start()
  let seen: string[] = []
  for (let i = 0; i < 100 && seen.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    seen = await finals()
  }
  t.same(seen, ['final:AAPL#1m@2025-12-21T10:34:00Z', 'final:AAPL#5m@2025-12-21T10:30:00Z'])
  timed.stop()
  await new Promise((resolve) => setTimeout(resolve, 250))
  t.same(await finals(), [], 'nothing after stop')
})

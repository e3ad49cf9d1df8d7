import t from 'tap'
import { MemoryBus } from '../../shared/adapters/memory/memory-bus.js'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import type { Archive } from '../../shared/ports/archive.js'
import type { BucketEvent } from '../../shared/ports/bus.js'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { type BucketRef, seriesKey } from '../../shared/timeseries/keys.js'
import { foldBatch } from '../../services/aggregator/fold-batch.js'

const NOW = Date.parse('2025-12-21T12:00:00Z')

function item (ticker: string, id: string, ts: number): ScoredItem {
  return { id, ticker, ts, score: 0.5, label: labelFor(0.5), source: 'tiingo' }
}

/** An empty archive whose reads for one ticker wait until the test lets them go. */
function archiveHolding (ticker: string): { archive: Archive, release: () => void } {
  let release = () => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  const archive: Archive = {
    put: async () => ({ written: [], superseded: [], rejected: [], failed: [] }),
    range: async () => [],
    get: async (refs: BucketRef[]) => {
      if (refs.some((ref) => ref.ticker === ticker)) await held
      return []
    },
    nextTerm: async () => 1024,
    ping: async () => {},
    close: async () => {}
  }
  return { archive, release }
}

t.test('a ticker waiting for a slow archive load holds back no other ticker\'s live updates', async (t) => {
  // Buckets that began before the hot state existed need an archive read before their fold.
  const bus = new MemoryBus()
  const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000, createdAt: NOW, bus })
  const { archive, release } = archiveHolding('AAPL')
  const heard: BucketEvent[] = []
  await bus.subscribe(seriesKey('MSFT', '1m'), (event) => { heard.push(event) })

  const batch = { id: 'b1', acceptedAt: NOW, items: [item('AAPL', 'a1', NOW - 3_600_000), item('MSFT', 'm1', NOW - 3_600_000)] }
  const folding = foldBatch({ hot, archive, now: () => NOW }, batch)
  for (let i = 0; i < 50 && heard.length === 0; i++) await new Promise((resolve) => setImmediate(resolve))
  t.equal(heard.length, 1, 'MSFT\'s change is published while AAPL still waits for the archive')
  t.equal(heard[0]?.bucket.count, 1)
  t.equal(heard[0]?.acceptedAt, NOW, 'the event carries when its batch was accepted')

  release()
  const report = await folding
  t.equal(report.changed.length, 16, 'both tickers folded into their eight buckets')
})

import t from 'tap'
import { Mailbox } from '../../services/gateway/streaming/mailbox.js'
import { StreamEvent } from '../../services/gateway/streaming/stream-event.js'
import type { Bucket } from '../../shared/timeseries/index.js'

const NOW = Date.UTC(2025, 11, 21, 10, 35, 30)
const CURRENT = Date.UTC(2025, 11, 21, 10, 35)

function bucket (start: number, rev: number, lastUpdated = NOW - 1000 + rev): Bucket {
  const key = { ts: start, id: 'a' }
  return {
    ticker: 'AAPL',
    resolution: '1m',
    start,
    open: 0.1,
    high: 0.1,
    low: 0.1,
    close: 0.1,
    count: rev,
    sum: 0.1 * rev,
    label_counts: { positive: rev, neutral: 0, negative: 0 },
    sources: ['test'],
    first: key,
    last: key,
    rev,
    last_updated: lastUpdated
  }
}

t.test('one pending state per bucket, the newest rev wins whatever the arrival order', async (t) => {
  const box = new Mailbox()
  for (let rev = 1; rev <= 1000; rev++) box.put(new StreamEvent(bucket(CURRENT, rev), 'change', NOW))
  box.put(new StreamEvent(bucket(CURRENT, 3), 'change', NOW))
  t.equal(box.size, 1)
  const [only] = box.take()
  t.equal(only?.bucket.rev, 1000)
  t.equal(box.size, 0)
})

t.test('a late change to a past bucket and a change of the current bucket are two entries', async (t) => {
  const box = new Mailbox()
  box.put(new StreamEvent(bucket(CURRENT, 5), 'change', NOW))
  box.put(new StreamEvent(bucket(CURRENT - 120_000, 9, NOW - 500), 'change', NOW))
  box.put(new StreamEvent(bucket(CURRENT, 6), 'change', NOW))
  const taken = box.take()
  t.equal(taken.length, 2)
  t.same(taken.map((e) => e.bucket.rev), [6, 9], 'in stream-time order')
  const rendered = taken.map((e) => JSON.parse(e.render(NOW).ws) as { type: string, progress_pct?: number })
  t.same(rendered.map((e) => e.type), ['partial_bucket', 'bucket_update'])
  t.equal(rendered[0]?.progress_pct, 50)
})

t.test('a final event of the same rev replaces the change; its id is the bucket end', async (t) => {
  const box = new Mailbox()
  const past = CURRENT - 60_000
  box.put(new StreamEvent(bucket(past, 4, past + 30_000), 'change', NOW))
  box.put(new StreamEvent(bucket(past, 4, past + 30_000), 'final', NOW))
  const [event] = box.take()
  t.equal(event?.kind, 'final')
  t.equal(event?.time, CURRENT)
  t.match(event?.render(NOW).sse, new RegExp(`^id: ${CURRENT}\nevent: bucket_update\ndata: \\{`))
})

t.test('take honours a limit and drop forgets series', async (t) => {
  const box = new Mailbox()
  for (let i = 0; i < 10; i++) box.put(new StreamEvent(bucket(CURRENT - i * 60_000, 1, NOW - i), 'change', NOW))
  t.equal(box.take(3).length, 3)
  t.equal(box.size, 7)
  box.drop((e) => e.bucket.start < CURRENT - 2 * 60_000)
  t.equal(box.size, 3)
})

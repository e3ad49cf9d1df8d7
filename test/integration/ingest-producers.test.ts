import { Writable } from 'node:stream'
import pino from 'pino'
import t from 'tap'
import { startTestPulse } from '../helpers/pulse.js'

/*
 * Named, scoped producers: each ingest key has a name, may be limited to tickers (names
 * or patterns) and a batch rate; a batch outside its scope is refused whole; every
 * accepted batch leaves an audit line with the producer's name and counts.
 */

const FEED_KEY = 'feed-a-key-0123456789'
const WIRE_KEY = 'wire-key-0123456789ab'
const LEGACY_KEY = 'legacy-key-0123456789'

function item (ticker: string, id: string): Record<string, unknown> {
  return { id: `item-${id}`, ticker, timestamp: new Date().toISOString(), score: 0.1, source: 'tiingo' }
}

t.test('a scoped producer is refused whole outside its tickers, limited to its rate, and audited by name', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({ write (chunk: Buffer, _encoding, done) { for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>); done() } })
  const logger = pino({ level: 'info' }, sink)
  const p = await startTestPulse(t, {
    TICKERS: 'AAPL,MSFT,TECH.A',
    INGEST_API_KEY: `feed-a:${FEED_KEY}:AAPL|TECH.*:3,wire:${WIRE_KEY},${LEGACY_KEY}`,
    LOG_LEVEL: 'info'
  }, { logger })
  const post = async (key: string, items: unknown[]): Promise<{ status: number, body: any }> => await p.post(items, { authorization: `Bearer ${key}` })

  const mixed = await post(FEED_KEY, [item('AAPL', 'f1'), item('MSFT', 'f2'), item('TECH.A', 'f3')])
  t.equal(mixed.status, 403, 'a batch with one ticker outside the scope is refused')
  t.equal(mixed.body.error.code, 'PULSE_ERR_PRODUCER_SCOPE')
  t.same(mixed.body.error.details, [{ index: 1, field: 'ticker', message: 'MSFT is outside the scope of producer feed-a' }], 'naming the item')
  const history = await p.get('/api/v2/timeseries/AAPL?resolution=1m')
  t.equal(history.body.partial_bucket, null, 'nothing of the refused batch was accepted')

  t.equal((await post(FEED_KEY, [item('AAPL', 'f4'), item('TECH.A', 'f5')])).status, 202, 'within its scope it posts')
  t.equal((await post(WIRE_KEY, [item('MSFT', 'w1')])).status, 202, 'an unscoped named key posts any ticker')
  t.equal((await post(LEGACY_KEY, [item('MSFT', 'l1')])).status, 202, 'a bare key (the old form) still works')

  const statuses = [(await post(FEED_KEY, [item('AAPL', 'f6')])).status, (await post(FEED_KEY, [item('AAPL', 'f7')])).status]
  const limited = await post(FEED_KEY, [item('AAPL', 'f8')])
  t.same([...statuses, limited.status], [202, 429, 429], 'feed-a: 3 batches a minute (the refused one counted too), then 429')
  t.equal(limited.body.error.code, 'PULSE_ERR_RATE_LIMITED')
  t.match(limited.body.error.message, /producer feed-a/, 'naming the producer')
  t.equal((await post(WIRE_KEY, [item('AAPL', 'w2')])).status, 202, 'other producers are not limited by it')

  const audit = lines.filter((l) => l.audit === 'ingest')
  t.same(audit.map((l) => [l.producer, l.items, l.tickers]), [['feed-a', 2, 2], ['wire', 1, 1], ['key-3', 1, 1], ['feed-a', 1, 1], ['wire', 1, 1]], 'one audit line per accepted batch, with the producer and counts')
  t.notOk(lines.some((l) => JSON.stringify(l).includes('item-')), 'the log never holds the items')
})

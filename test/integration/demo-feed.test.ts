import t from 'tap'
import { eventually, startTestPulse } from '../helpers/pulse.js'

t.test('the demo feed fills every ticker with live data; DEMO_FEED=0 keeps it quiet', async (t) => {
  const live = await startTestPulse(t, { DEMO_FEED: '1', TICKERS: 'AAPL,MSFT' })
  const tickers = await eventually(async () => {
    const { body } = await live.get('/api/v2/tickers')
    return body.tickers.every((x: { partial_1m: unknown }) => x.partial_1m !== null) ? body.tickers : undefined
  }, 15_000, 'demo data on both tickers')
  t.equal(tickers.length, 2)
  const quiet = await startTestPulse(t, { DEMO_FEED: '0', TICKERS: 'AAPL,MSFT' })
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const { body } = await quiet.get('/api/v2/tickers')
  t.ok(body.tickers.every((x: { partial_1m: unknown }) => x.partial_1m === null), 'no items without the feed')
})

import t from 'tap'
import { isTickerSymbol, retiredReadableMs, TickerCatalogue } from '../../shared/timeseries/ticker-catalogue.js'
import { DURATION_MS, RETENTION_MS } from '../../shared/timeseries/resolutions.js'

t.test('a retired ticker is readable while any of its buckets may be retained, then unknown', async (t) => {
  t.equal(retiredReadableMs(), DURATION_MS['24h'] + RETENTION_MS['24h'], 'the 24h bucket open at retirement, kept 90 days after its end')
  const retired = TickerCatalogue.seeded(['AAPL', 'MSFT'], 0).withRetired('MSFT', 1000)?.catalogue as TickerCatalogue
  t.ok(retired.isReadable('MSFT', 1000 + retiredReadableMs() - 1))
  t.notOk(retired.isReadable('MSFT', 1000 + retiredReadableMs()))
  t.same(retired.readable(1000 + retiredReadableMs()), ['AAPL'])
  t.notOk(retired.isReadable('TSLA', 0), 'a ticker never added is not readable')
})

t.test('changes make new catalogues and leave the old one as it was', async (t) => {
  const start = TickerCatalogue.seeded(['AAPL'], 0)
  const { catalogue, change } = start.withAdded('BRK.B', 5)
  t.ok(change.changed)
  t.same(start.active, ['AAPL'])
  t.same(catalogue.active, ['AAPL', 'BRK.B'])
  t.notOk(catalogue.equals(start))
  t.ok(catalogue.equals(new TickerCatalogue(catalogue.entries)))
  t.equal(start.withRetired('NOPE', 1), undefined)
})

t.test('ticker symbols follow TICKER_PATTERN', async (t) => {
  for (const good of ['A', 'BRK.B', 'X1234567890'.slice(0, 10)]) t.ok(isTickerSymbol(good), good)
  for (const bad of ['', 'aapl', '1ABC', 'TOOLONGTICKER', 42, null]) t.notOk(isTickerSymbol(bad), String(bad))
})

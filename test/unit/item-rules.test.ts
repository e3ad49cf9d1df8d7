import t from 'tap'
import { checkBatch, checkItem, scoreText } from '../../shared/timeseries/item.js'

const NOW = Date.UTC(2025, 11, 21, 10, 35, 17)
const rules = { tickers: new Set(['AAPL', 'BRK.B']), now: NOW, scoreText }
const valid = { id: 'n1', ticker: 'AAPL', timestamp: '2025-12-21T10:30:00Z', score: 0.4, source: 'tiingo' }

t.test('a valid item is scored and labelled', async (t) => {
  const item = checkItem(valid, 0, rules)
  t.same(item, { id: 'n1', ticker: 'AAPL', ts: Date.UTC(2025, 11, 21, 10, 30), score: 0.4, label: 'positive', source: 'tiingo' })
  t.match(checkItem({ ...valid, score: -0.05 }, 0, rules), { label: 'negative' })
  t.match(checkItem({ ...valid, score: 0.049 }, 0, rules), { label: 'neutral' })
  t.match(checkItem({ ...valid, score: 0.9, label: 'negative' }, 0, rules), { label: 'negative' }, 'a given label stands')
  t.match(checkItem({ ...valid, ticker: 'BRK.B', timestamp: '2025-12-21T12:30:00+02:00' }, 0, rules), { ts: Date.UTC(2025, 11, 21, 10, 30) })
})

t.test('text without a score is scored by the lexicon into [-1, 1]', async (t) => {
  const { score, ...rest } = valid
  const good = checkItem({ ...rest, text: 'Record profits, excellent growth, great outlook' }, 0, rules)
  const bad = checkItem({ ...rest, text: 'Fraud scandal, terrible losses and lawsuits' }, 0, rules)
  t.ok(!Array.isArray(good) && good.score > 0.05 && good.score <= 1 && good.label === 'positive')
  t.ok(!Array.isArray(bad) && bad.score < -0.05 && bad.score >= -1 && bad.label === 'negative')
  t.match(checkItem(rest, 0, rules), [{ field: 'score' }], 'no score and no text')
})

t.test('every rule names its field', async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ ...valid, id: '' }, 'id'],
    [{ ...valid, id: 'x'.repeat(129) }, 'id'],
    [{ ...valid, id: 'a\nb' }, 'id'],
    [{ ...valid, ticker: 'aapl' }, 'ticker'],
    [{ ...valid, ticker: 'AA#PL' }, 'ticker'],
    [{ ...valid, ticker: 'TSLA' }, 'ticker'],
    [{ ...valid, timestamp: '2025-12-21 10:30' }, 'timestamp'],
    [{ ...valid, timestamp: '2025-12-21T10:30:00' }, 'timestamp'],
    [{ ...valid, timestamp: '2025-12-21T10:45:00Z' }, 'timestamp'],
    [{ ...valid, timestamp: '2025-02-30T10:30:00Z' }, 'timestamp'],
    [{ ...valid, score: 1.5 }, 'score'],
    [{ ...valid, score: '0.5' }, 'score'],
    [{ ...valid, label: 'great' }, 'label'],
    [{ ...valid, source: 'Tiingo' }, 'source'],
    [{ ...valid, source: 'a:b' }, 'source'],
    [{ ...valid, text: 'é'.repeat(2049) }, 'text'],
    [{ ...valid, extra: 1 }, 'extra']
  ]
  for (const [item, field] of cases) {
    const result = checkItem(item, 3, rules)
    t.ok(Array.isArray(result) && result.some((p) => p.field === field && p.index === 3), `${JSON.stringify(item).slice(0, 60)} → ${field}`)
  }
  t.match(checkItem(null, 0, rules), [{ field: 'item' }])
  t.match(checkItem({ ...valid, timestamp: '2025-09-01T00:00:00Z' }, 0, rules), [{ field: 'timestamp', tooOld: true }])
})

t.test('a batch with one bad item is rejected whole, with every problem', async (t) => {
  const result = checkBatch([valid, { ...valid, score: 2 }, { ...valid, source: '' }], rules)
  t.notOk(result.ok)
  if (!result.ok) t.same(result.problems.map((p) => p.index), [1, 2])
  t.ok(checkBatch([valid, { ...valid, id: 'n2' }], rules).ok)
})

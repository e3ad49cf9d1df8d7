import t from 'tap'
import { clearOfMinuteBoundary, eventually, startTestPulse, TEST_INGEST_KEY } from '../helpers/pulse.js'

const iso = (ms: number): string => new Date(ms).toISOString()

t.test('ingest: accepted batches are folded into all eight resolutions', async (t) => {
  await clearOfMinuteBoundary()
  const p = await startTestPulse(t)
  const now = Date.now()
  const res = await p.post([
    { id: 'a1', ticker: 'AAPL', timestamp: iso(now), score: 0.5, source: 'tiingo' },
    { id: 'a2', ticker: 'AAPL', timestamp: iso(now), text: 'Excellent results, strong growth', source: 'finnhub' },
    { id: 'a1', ticker: 'AAPL', timestamp: iso(now), score: -1, source: 'tiingo' }
  ])
  t.same(res, { status: 202, body: { accepted: 3 } }, 'duplicates count as accepted')
  for (const resolution of ['1m', '5m', '10m', '1h', '3h', '6h', '12h', '24h']) {
    const bucket = await eventually(async () => {
      const { body } = await p.get(`/api/v2/timeseries/AAPL?resolution=${resolution}`)
      return body.partial_bucket?.count === 2 ? body.partial_bucket : undefined
    }, 10_000, `${resolution} bucket`)
    t.equal(bucket.open, 0.5, `${resolution} open`)
    t.same(bucket.sources, ['finnhub', 'tiingo'])
    t.equal(bucket.is_partial, true)
  }
})

t.test('ingest: NDJSON bodies', async (t) => {
  const p = await startTestPulse(t)
  const lines = [0, 1, 2].map((i) => JSON.stringify({ id: `n${i}`, ticker: 'MSFT', timestamp: iso(Date.now()), score: 0.1, source: 'tiingo' })).join('\n')
  const res = await p.post(lines + '\n', { 'content-type': 'application/x-ndjson' })
  t.same(res, { status: 202, body: { accepted: 3 } })
  const bad = await p.post('{"id":"x"}\n{oops\n', { 'content-type': 'application/x-ndjson' })
  t.equal(bad.status, 400)
  t.equal(bad.body.error.code, 'PULSE_ERR_MALFORMED_BODY')
  t.match(bad.body.error.message, /line 2/)
})

t.test('ingest: bad input gets a 4xx with a code and changes nothing', async (t) => {
  const p = await startTestPulse(t)
  const now = Date.now()
  const good = { id: 'g', ticker: 'AAPL', timestamp: iso(now), score: 0.2, source: 'tiingo' }
  const cases: Array<[string, unknown, Record<string, string>, number, string]> = [
    ['no key', [good], { authorization: '' }, 401, 'PULSE_ERR_UNAUTHORIZED'],
    ['wrong key', [good], { authorization: 'Bearer nope-nope-nope-nope' }, 401, 'PULSE_ERR_UNAUTHORIZED'],
    ['malformed JSON', '[{"id":', {}, 400, 'PULSE_ERR_MALFORMED_BODY'],
    ['not an array', good, {}, 400, 'PULSE_ERR_VALIDATION'],
    ['empty batch', [], {}, 400, 'PULSE_ERR_EMPTY_BATCH'],
    ['1001 items', Array.from({ length: 1001 }, (_, i) => ({ ...good, id: `i${i}` })), {}, 400, 'PULSE_ERR_BATCH_TOO_LARGE'],
    ['wrong types', [{ ...good, score: 'high' }], {}, 400, 'PULSE_ERR_VALIDATION'],
    ['NaN as a string', '[{"id":"g","ticker":"AAPL","timestamp":"' + iso(now) + '","score":NaN,"source":"tiingo"}]', {}, 400, 'PULSE_ERR_MALFORMED_BODY'],
    ['1e400 (Infinity)', '[{"id":"g","ticker":"AAPL","timestamp":"' + iso(now) + '","score":1e400,"source":"tiingo"}]', {}, 400, 'PULSE_ERR_VALIDATION'],
    ['unknown ticker', [{ ...good, ticker: 'ZZZZ' }], {}, 400, 'PULSE_ERR_VALIDATION'],
    ['# in ticker', [{ ...good, ticker: 'AA#L' }], {}, 400, 'PULSE_ERR_VALIDATION'],
    ['control character in id', [{ ...good, id: 'a\u0000b' }], {}, 400, 'PULSE_ERR_VALIDATION'],
    ['too old', [{ ...good, timestamp: iso(now - 100 * 86_400_000) }], {}, 400, 'PULSE_ERR_ITEM_TOO_OLD'],
    ['future', [{ ...good, timestamp: iso(now + 3_600_000) }], {}, 400, 'PULSE_ERR_VALIDATION'],
    ['one bad among good', [good, { ...good, id: 'h', source: 'BAD SOURCE' }], {}, 400, 'PULSE_ERR_VALIDATION'],
    ['text/plain', 'hello', { 'content-type': 'text/plain' }, 415, 'PULSE_ERR_UNSUPPORTED_MEDIA_TYPE'],
    ['body over 1 MB', JSON.stringify([{ ...good, text: 'x'.repeat(1_100_000) }]), {}, 413, 'PULSE_ERR_BODY_TOO_LARGE']
  ]
  for (const [what, body, headers, status, code] of cases) {
    const res = await p.post(body, headers)
    t.equal(res.status, status, `${what}: status`)
    t.equal(res.body?.error?.code, code, `${what}: code`)
    t.type(res.body?.error?.message, 'string', `${what}: message`)
  }
  const detailed = await p.post([good, { ...good, id: 'h', score: 3, source: 'X' }])
  t.same(detailed.body.error.details.map((d: { index: number, field: string }) => [d.index, d.field]), [[1, 'score'], [1, 'source']])
  await new Promise((resolve) => setTimeout(resolve, 300))
  const { body } = await p.get('/api/v2/timeseries/AAPL?resolution=1m')
  t.equal(body.partial_bucket, null, 'nothing was stored')
  t.same(body.buckets, [])
  const health = await p.get('/healthz')
  t.equal(health.status, 200, 'the process is still up')
})

t.test('ingest: several keys may be valid at once (rotation)', async (t) => {
  const p = await startTestPulse(t, { INGEST_API_KEY: `${TEST_INGEST_KEY},second-key-0123456789` })
  const item = { id: 'r', ticker: 'AAPL', timestamp: iso(Date.now()), score: 0, source: 'tiingo' }
  t.equal((await p.post([item], { authorization: 'Bearer second-key-0123456789' })).status, 202)
  t.equal((await p.post([item])).status, 202)
})

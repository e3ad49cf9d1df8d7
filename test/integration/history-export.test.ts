import { get, type IncomingMessage } from 'node:http'
import { parse } from 'csv-parse/sync'
import t from 'tap'
import WebSocket from 'ws'
import { runningExports } from '../../services/gateway/export/export-pages.js'
import { PRODUCTION_RETENTION_MS, RETENTION_MS } from '../../shared/timeseries/resolutions.js'
import { eventually, startTestPulse, type TestPulse } from '../helpers/pulse.js'
import { sharedDynalite, sharedRedisServer, uniqueEnv } from '../helpers/shared-services.js'
import { connect, type WebSocketConstructor } from '../../web/client/src/index.js'

const iso = (ms: number): string => new Date(ms).toISOString()
const MINUTE = 60_000
const DAY = 86_400_000
const SOURCES = ['tiingo', 'finnhub', 'news-api', 'x_feed']

interface JsonBucket { timestamp: string, [field: string]: unknown }

/**
 * Lengthens the 1m retention to three days in this process (where the embedded Pulse runs),
 * so one series holds more than 1500 retained buckets; production keeps six hours (360).
 * Applied after start, which sets the table from the configuration, and undone at teardown.
 */
function longOneMinuteRetention (t: { teardown: (fn: () => void) => void }): void {
  Object.assign(RETENTION_MS, { '1m': 3 * DAY })
  t.teardown(() => { Object.assign(RETENTION_MS, { '1m': PRODUCTION_RETENTION_MS['1m'] }) })
}

/** One item in each of `minutes` distinct minutes back from the current one (not in it), several sources. */
async function postMinutes (p: TestPulse, ticker: string, minutes: number): Promise<number> {
  const current = Date.now() - (Date.now() % MINUTE)
  const items = Array.from({ length: minutes }, (_, i) => ({
    id: `${ticker}-${i}`,
    ticker,
    timestamp: iso(current - (i + 1) * MINUTE + 1000 + (i % 7) * 1000),
    score: Math.round(Math.sin(i) * 1000) / 1000,
    source: SOURCES[i % SOURCES.length]
  }))
  for (let i = 0; i < items.length; i += 1000) t.equal((await p.post(items.slice(i, i + 1000))).status, 202)
  return current
}

/** All buckets of a history range, following `next` from page to page. */
async function walkPages (p: TestPulse, path: string): Promise<{ buckets: JsonBucket[], pages: number[] }> {
  const buckets: JsonBucket[] = []
  const pages: number[] = []
  let url: URL | undefined = new URL(path, p.url)
  while (url !== undefined) {
    const res = await fetch(url)
    t.equal(res.status, 200, `page ${pages.length + 1}`)
    const body = await res.json() as { buckets: JsonBucket[], next?: string }
    buckets.push(...body.buckets)
    pages.push(body.buckets.length)
    url = body.next === undefined ? undefined : new URL(body.next, url)
    if (pages.length > 20) throw new Error('pages do not end')
  }
  return { buckets, pages }
}

/** A CSV row back in the JSON bucket's shape, by the documented columns. */
function fromCsv (row: Record<string, string>): JsonBucket {
  const bucket: JsonBucket = {
    ticker: row.ticker,
    resolution: row.resolution,
    timestamp: row.timestamp as string,
    open: Number(row.open),
    high: Number(row.high),
    low: Number(row.low),
    close: Number(row.close),
    count: Number(row.count),
    sum: Number(row.sum),
    avg: Number(row.avg),
    label_counts: { positive: Number(row['label_counts.positive']), neutral: Number(row['label_counts.neutral']), negative: Number(row['label_counts.negative']) },
    sources: row.sources === '' ? [] : (row.sources as string).split(';'),
    sources_truncated: row.sources_truncated === 'true',
    last_updated: row.last_updated,
    is_partial: row.is_partial === 'true',
    rev: Number(row.rev)
  }
  if (row.progress_pct !== '') bucket.progress_pct = Number(row.progress_pct)
  if (row.next_update_at !== '') bucket.next_update_at = row.next_update_at
  return bucket
}

t.test('export: CSV and NDJSON hold exactly what JSON history holds for the range', async (t) => {
  const p = await startTestPulse(t)
  const current = await postMinutes(p, 'NVDA', 90)
  const range = `start=${iso(current - 120 * MINUTE)}&end=${iso(current + MINUTE)}`
  const history = await eventually(async () => {
    const res = await p.get(`/api/v2/timeseries/NVDA?resolution=1m&${range}`)
    return res.body.buckets?.length === 90 ? res.body : undefined
  }, 15_000, 'ninety buckets in history')
  t.notOk('next' in history, 'a range that fits one page has no next')

  const csv = await fetch(`${p.url}/api/v2/timeseries/NVDA/export?resolution=1m&${range}&format=csv`)
  t.equal(csv.status, 200)
  t.match(csv.headers.get('content-type'), /^text\/csv; charset=utf-8/)
  t.equal(csv.headers.get('content-disposition'), `attachment; filename="NVDA_1m_${iso(current - 120 * MINUTE).replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')}_${iso(current + MINUTE).replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')}.csv"`)
  const text = await csv.text()
  t.ok(text.startsWith('ticker,resolution,timestamp,open,high,low,close,count,sum,avg,label_counts.positive,label_counts.neutral,label_counts.negative,sources,sources_truncated,last_updated,is_partial,rev,progress_pct,next_update_at\r\n'), 'header row, CRLF')
  const rows = parse(text, { columns: true }) as Array<Record<string, string>>
  t.same(rows.map(fromCsv), history.buckets, 'CSV rows are the JSON buckets')

  const ndjson = await fetch(`${p.url}/api/v2/timeseries/NVDA/export?resolution=1m&${range}&format=ndjson`)
  t.equal(ndjson.status, 200)
  t.match(ndjson.headers.get('content-type'), /^application\/x-ndjson/)
  t.match(ndjson.headers.get('content-disposition'), /^attachment; filename="NVDA_1m_\d{8}T\d{6}Z_\d{8}T\d{6}Z\.ndjson"$/)
  const lines = (await ndjson.text()).split('\n')
  t.equal(lines.pop(), '', 'every line ends with a newline')
  t.same(lines.map((line) => JSON.parse(line)), history.buckets, 'NDJSON lines are the JSON buckets')

  const empty = await fetch(`${p.url}/api/v2/timeseries/TSLA/export?resolution=1m`)
  t.equal(await empty.text(), 'ticker,resolution,timestamp,open,high,low,close,count,sum,avg,label_counts.positive,label_counts.neutral,label_counts.negative,sources,sources_truncated,last_updated,is_partial,rev,progress_pct,next_update_at\r\n', 'a series with no buckets is the header row alone (csv is the default)')
})

t.test('export in cluster mode: the pages read the Redis hot state and the archive, and equal history', async (t) => {
  const redis = await sharedRedisServer()
  const env = { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: (await sharedDynalite()).endpoint, PULSE_ENV: uniqueEnv('x'), TICKERS: 'AAPL,MSFT' }
  const gateway = await startTestPulse(t, { ...env, ROLE: 'gateway' }, { drainMs: 0 })
  await startTestPulse(t, { ...env, ROLE: 'worker' })
  const current = await postMinutes(gateway, 'MSFT', 30)
  const range = `start=${iso(current - 40 * MINUTE)}&end=${iso(current)}`
  const history = await eventually(async () => {
    const res = await gateway.get(`/api/v2/timeseries/MSFT?resolution=1m&${range}`)
    return res.body.buckets?.length === 30 && res.body.archive_unavailable === false ? res.body : undefined
  }, 20_000, 'thirty buckets in history')
  const lines = await eventually(async () => {
    const text = await (await fetch(`${gateway.url}/api/v2/timeseries/MSFT/export?resolution=1m&${range}&format=ndjson`)).text()
    const parsed = text.trim().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line))
    return parsed.length === 30 ? parsed : undefined
  }, 10_000, 'thirty exported buckets')
  t.same(lines.map((b) => b.timestamp), history.buckets.map((b: JsonBucket) => b.timestamp))
  t.same(lines.map((b) => [b.count, b.sum, b.sources]), history.buckets.map((b: JsonBucket) => [b.count, b.sum, b.sources]), 'the same states')
})

t.test('history pages: a range of more than 1500 buckets is walked once, without gaps or repeats', async (t) => {
  const p = await startTestPulse(t)
  longOneMinuteRetention(t)
  const current = await postMinutes(p, 'AAPL', 2000)
  const start = current - 2100 * MINUTE
  const path = `/api/v2/timeseries/AAPL?resolution=1m&start=${iso(start)}&end=${iso(current + MINUTE)}`
  const walked = await eventually(async () => {
    const result = await walkPages(p, path)
    return result.buckets.length === 2000 ? result : undefined
  }, 30_000, 'two thousand buckets over the pages')
  t.same(walked.pages, [1500, 500], 'a full page, then the rest; the last page has no next')
  const expected = Array.from({ length: 2000 }, (_, i) => iso(current - (2000 - i) * MINUTE).replace('.000Z', 'Z'))
  t.same(walked.buckets.map((b) => b.timestamp), expected, 'every bucket once, ascending')

  const client = connect({ url: p.url, WebSocket: WebSocket as unknown as WebSocketConstructor })
  t.teardown(() => client.close())
  const whole = await client.history('AAPL', '1m', { start, end: current + MINUTE })
  t.same(whole.buckets, walked.buckets, "the SDK's history() follows next and returns the whole range")
  t.notOk('next' in whole)

  const exported = await fetch(`${p.url}${path.replace('AAPL?', 'AAPL/export?')}&format=ndjson`)
  const lines = (await exported.text()).trim().split('\n').map((line) => JSON.parse(line))
  t.same(lines, walked.buckets, 'the export of the range (read in five pages) equals the walked history')
})

t.test('export: bad input is a 4xx with its code and changes nothing', async (t) => {
  const p = await startTestPulse(t)
  const now = Date.now()
  const cases: Array<[string, number, string]> = [
    ['/api/v2/timeseries/ZZZZ/export?resolution=1m', 404, 'PULSE_ERR_UNKNOWN_TICKER'],
    ['/api/v2/timeseries/AAPL/export', 400, 'PULSE_ERR_BAD_RESOLUTION'],
    ['/api/v2/timeseries/AAPL/export?resolution=2m', 400, 'PULSE_ERR_BAD_RESOLUTION'],
    ['/api/v2/timeseries/AAPL/export?resolution=1m&format=xlsx', 400, 'PULSE_ERR_BAD_FORMAT'],
    ['/api/v2/timeseries/AAPL/export?resolution=1m&format=csv&format=ndjson', 400, 'PULSE_ERR_BAD_FORMAT'],
    ['/api/v2/timeseries/AAPL/export?resolution=1m&start=yesterday', 400, 'PULSE_ERR_BAD_RANGE'],
    [`/api/v2/timeseries/AAPL/export?resolution=1m&start=${iso(now - MINUTE)}&end=${iso(now - 2 * MINUTE)}`, 400, 'PULSE_ERR_BAD_RANGE'],
    ['/api/v2/timeseries/AAPL/export?resolution=1m&start=2020-01-01T00:00:00Z&end=2020-01-02T00:00:00Z', 400, 'PULSE_ERR_OUTSIDE_RETENTION'],
    [`/api/v2/timeseries/AAPL/export?resolution=1h&start=${iso(now + DAY)}&end=${iso(now + 2 * DAY)}`, 400, 'PULSE_ERR_OUTSIDE_RETENTION']
  ]
  for (const [path, status, code] of cases) {
    const res = await p.get(path)
    t.equal(res.status, status, `${path}: status`)
    t.equal(res.body?.error?.code, code, `${path}: code`)
    t.ok(typeof res.body?.error?.message === 'string' && res.body.error.message.length > 10, `${path}: a message`)
  }
  const reachingBack = await p.get(`/api/v2/timeseries/AAPL/export?resolution=1m&start=2020-01-01T00:00:00Z&end=${iso(now)}`)
  t.equal(reachingBack.status, 200, 'a range that reaches before the retention reads what is retained')
})

t.test('export: the read token and read rate limit of history apply', async (t) => {
  const token = 'read-secret-0123456789'
  const p = await startTestPulse(t, { READ_TOKEN: token, RATE_LIMIT_READ: '2' })
  const path = '/api/v2/timeseries/AAPL/export?resolution=1h'
  const anonymous = await p.get(path)
  t.equal(anonymous.status, 401)
  t.equal(anonymous.body.error.code, 'PULSE_ERR_UNAUTHORIZED')
  t.equal((await p.get(path, { authorization: `Bearer ${token}` })).status, 200)
  t.equal((await p.get(`${path}&token=${token}`)).status, 200, 'or ?token=, for a plain download link')
  const limited = await p.get(path, { authorization: `Bearer ${token}` })
  t.equal(limited.status, 429)
  t.equal(limited.body.error.code, 'PULSE_ERR_RATE_LIMITED')
})

t.test('export: a client that goes away mid-export stops the reading', async (t) => {
  const p = await startTestPulse(t)
  longOneMinuteRetention(t)
  const archive = p.pulse.adapters.archive
  const range = archive.range.bind(archive)
  let calls = 0
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  archive.range = async (ticker, resolution, from, to, now) => {
    // Only the export's page reads count (the gateway's own loads span the whole window).
    if (ticker === 'AMZN' && to - from <= 500 * MINUTE) {
      calls++
      // The first page answers; the second waits until the client has gone.
      if (calls > 1) await gate
    }
    return await range(ticker, resolution, from, to, now)
  }
  t.teardown(() => release())
  // Three days of 1m buckets: nine pages of 500. The client reads the headers, then goes.
  const request = get(`${p.url}/api/v2/timeseries/AMZN/export?resolution=1m`)
  const res = await new Promise<IncomingMessage>((resolve, reject) => request.once('response', resolve).once('error', reject))
  t.equal(res.statusCode, 200)
  await eventually(() => calls === 2 ? true : undefined, 10_000, 'the second page to be asked for')
  request.destroy()
  const server = p.pulse.app?.server
  await eventually(async () => await new Promise<boolean | undefined>((resolve) => server?.getConnections((_err, n) => resolve(n === 0 ? true : undefined))), 10_000, 'the server to see the client go')
  release()
  await eventually(() => runningExports() === 0 ? true : undefined, 10_000, 'the export to stop')
  t.equal(calls, 2, 'no page was read after the one in flight when the client went away')
})

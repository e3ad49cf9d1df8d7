import t from 'tap'
import { MAX_SUBSCRIPTIONS } from '../../shared/stream-limits.js'
import { RESOLUTIONS } from '../../shared/timeseries/resolutions.js'
import { RequestThrottle } from '../../web/src/store/request-throttle.js'
import { groupSeries, streamSelection } from '../../web/client/src/transport.js'

/** What the dashboard watches: one ticker at every resolution, the rows on screen at 1m. */
function watched (selected: string, rows: readonly string[]): string[] {
  return [...new Set([...RESOLUTIONS.map((r) => `${selected}#${r}`), ...rows.map((ticker) => `${ticker}#1m`)])]
}

const rows = Array.from({ length: 40 }, (_, i) => `R${i}`)

t.test('groupSeries covers exactly the series asked for, in a message or two', async (t) => {
  const series = watched('AAPL', ['AAPL', ...rows])
  const groups = groupSeries(series)
  t.equal(groups.length, 2, 'the selected ticker, and the rows')
  const covered = groups.flatMap((g) => g.tickers.flatMap((ticker) => g.resolutions.map((r) => `${ticker}#${r}`)))
  t.same(new Set(covered), new Set(series), 'no series more, none less')
  t.equal(covered.length, series.length, 'none twice')
})

t.test('an SSE selection is a product of at most the limit, and always keeps the selected ticker', async (t) => {
  const selection = streamSelection(watched('AAPL', rows), MAX_SUBSCRIPTIONS)
  t.equal(selection.tickers[0], 'AAPL')
  t.equal(selection.resolutions.length, 8)
  t.ok(selection.tickers.length * selection.resolutions.length <= MAX_SUBSCRIPTIONS, `${selection.tickers.length} tickers × 8`)
  t.equal(selection.tickers.length, Math.floor(MAX_SUBSCRIPTIONS / 8), 'as many rows as fit')
})

/** A response as the gateway's rate limiter sends it. */
function answer (status: number, headers: Record<string, string> = {}): Response {
  return new Response('{}', { status, headers: { 'x-ratelimit-limit': '600', 'x-ratelimit-remaining': '500', 'x-ratelimit-reset': '30', ...headers } })
}

async function settle (): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve()
  await new Promise((resolve) => setImmediate(resolve))
}

t.test('the throttle spends at most its share of the announced limit, drops unwanted requests, and pauses on 429', async (t) => {
  let now = 1_000_000
  const throttle = new RequestThrottle({ limitPerMinute: 600, share: 0.5, concurrency: 4, now: () => now })
  t.teardown(() => throttle.clear())
  let sent = 0
  const request = async (wanted = (): boolean => true): Promise<Response | undefined> => await throttle.request('low', async () => {
    sent++
    return answer(200)
  }, wanted)
  for (let i = 0; i < 200; i++) request().catch(() => {})
  await settle()
  // 600 a minute, half of it for this page: a burst of ten seconds' worth (50), the rest waits for the clock.
  t.equal(sent, 50, 'a burst of ten seconds of budget')
  t.equal(throttle.waiting, 150)
  now += 2000
  throttle.request('high', async () => answer(200)).catch(() => {})
  await settle()
  t.equal(sent, 59, 'two seconds later, ten more (5 a second): the high-priority one first, then nine waiting')

  throttle.clear()
  const dropped = await Promise.all([request(() => false), request(() => false)])
  t.same(dropped, [undefined, undefined], 'requests nobody wants any more are never sent')
  t.equal(sent, 59)

  now += 60_000
  await throttle.request('high', async () => answer(429, { 'retry-after': '30', 'x-ratelimit-remaining': '0' }))
  request().catch(() => {})
  await settle()
  t.equal(sent, 59, 'nothing is sent while the gateway said to wait')
  now += 31_000
  throttle.request('high', async () => answer(200)).catch(() => {})
  await settle()
  t.equal(sent, 60, 'after Retry-After the queue moves again')
})

t.test('the throttle adopts a lower limit the gateway announces', async (t) => {
  const now = 1_000_000
  const throttle = new RequestThrottle({ limitPerMinute: 6000, share: 0.5, concurrency: 1, now: () => now })
  t.teardown(() => throttle.clear())
  await throttle.request('high', async () => answer(200, { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '59' }))
  let sent = 0
  for (let i = 0; i < 20; i++) throttle.request('low', async () => { sent++; return answer(200, { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '58' }) }).catch(() => {})
  await settle()
  t.ok(sent <= 5, `at 60 a minute the burst is at most 5 (${sent})`)
})

t.test('slow overview reads never take the last slot: a high-priority read goes at once', async (t) => {
  const throttle = new RequestThrottle({ concurrency: 2, now: () => 1_000_000 })
  t.teardown(() => throttle.clear())
  const started: string[] = []
  const slow = async (name: string): Promise<Response> => {
    started.push(name)
    return await new Promise<Response>(() => {})
  }
  throttle.request('low', async () => await slow('low 1')).catch(() => {})
  throttle.request('low', async () => await slow('low 2')).catch(() => {})
  await settle()
  t.same(started, ['low 1'], 'the second overview read waits while the first hangs')
  throttle.request('high', async () => await slow('high')).catch(() => {})
  await settle()
  t.same(started, ['low 1', 'high'], 'the selected ticker is read at once')
})

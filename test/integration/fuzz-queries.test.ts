import fc from 'fast-check'
import t from 'tap'
import { nastyString, storedDigest, wrongValue } from '../helpers/hostile.js'
import { eventually, startTestPulse } from '../helpers/pulse.js'

const RESOLUTIONS = ['1m', '5m', '10m', '1h', '3h', '6h', '12h', '24h']
const badTicker = fc.oneof(nastyString, fc.constantFrom('ZZZZ', 'aapl', 'AAPL#1m', 'AAPL:1m', '*', '..', '%00', 'A'.repeat(300)), fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !['AAPL', 'MSFT'].includes(s)))
const badResolution = fc.oneof(nastyString, fc.constantFrom('', '2m', '1M', '60s', '1m,5m', '24H', '1m#', 'x'.repeat(1000)), wrongValue.map((v) => JSON.stringify(v)))
const badTime = fc.oneof(nastyString, fc.constantFrom('now', '0', '-1', '1e308', 'NaN', 'Infinity', '2025-01-01', '2025-13-01T00:00:00Z', '275760-09-13T00:00:00Z', '-271821-04-20T00:00:00Z'))

async function answer (url: string, init: RequestInit = {}): Promise<{ status: number, code: string | undefined }> {
  const controller = new AbortController()
  const res = await fetch(url, { ...init, signal: controller.signal })
  let code: string | undefined
  if (res.headers.get('content-type')?.includes('json') === true) {
    try { code = ((await res.json()) as { error?: { code?: string } }).error?.code } catch {}
  }
  controller.abort()
  return { status: res.status, code }
}

const clear = (a: { status: number, code: string | undefined }): boolean => a.status >= 400 && a.status < 500 && /^PULSE_ERR_[A-Z_]+$/.test(a.code ?? '')

t.test('history and SSE query strings: hostile input gets a 4xx with a catalogue code, nothing changes', async (t) => {
  const p = await startTestPulse(t, { TICKERS: 'AAPL,MSFT' })
  t.equal((await p.post([{ id: 'q1', ticker: 'AAPL', timestamp: new Date().toISOString(), score: 0.3, source: 'tiingo' }])).status, 202)
  await eventually(async () => (await storedDigest(p)).includes('queue=0') && (await storedDigest(p)).includes('AAPL') ? true : undefined)
  const before = await storedDigest(p)
  const counts: Record<string, number> = {}
  const count = (k: string): void => { counts[k] = (counts[k] ?? 0) + 1 }
  // Percent-encodes the UTF-8 bytes (encodeURIComponent throws on lone surrogates).
  const enc = (text: string): string => [...Buffer.from(text)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')

  await fc.assert(fc.asyncProperty(badTicker, fc.constantFrom(...RESOLUTIONS), async (ticker, resolution) => {
    count('history: bad ticker')
    const a = await answer(`${p.url}/api/v2/timeseries/${enc(ticker)}?resolution=${resolution}`)
    return clear(a)
  }), { numRuns: 200 })
  await fc.assert(fc.asyncProperty(badResolution, async (resolution) => {
    count('history: bad resolution')
    return clear(await answer(`${p.url}/api/v2/timeseries/AAPL?resolution=${enc(resolution)}`))
  }), { numRuns: 150 })
  await fc.assert(fc.asyncProperty(fc.constantFrom(...RESOLUTIONS), badTime, fc.boolean(), async (resolution, time, asStart) => {
    count('history: bad start/end')
    return clear(await answer(`${p.url}/api/v2/timeseries/AAPL?resolution=${resolution}&${asStart ? 'start' : 'end'}=${enc(time)}`))
  }), { numRuns: 150 })
  await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom('resolution', 'start', 'end', '__proto__', 'constructor'), fc.oneof(badResolution, badTime)), { minLength: 2, maxLength: 6 }), async (pairs) => {
    count('history: repeated and odd parameters')
    const query = ['resolution=zz', ...pairs.map(([k, v]) => `${k}=${enc(v)}`)].join('&')
    return clear(await answer(`${p.url}/api/v2/timeseries/AAPL?${query}`))
  }), { numRuns: 150 })
  // Percent-encoding that is not UTF-8 or not percent-encoding at all.
  for (const raw of ['%ZZ', '%ED%A0%80', '%C0%AF', '%FF%FE', '%', '%00', 'AAPL%0A', 'AAPL%23']) {
    count('history: raw bad encoding')
    const a = await answer(`${p.url}/api/v2/timeseries/${raw}?resolution=1m`)
    t.ok(clear(a), `path ${raw}: ${a.status} ${a.code}`)
    const b = await answer(`${p.url}/api/v2/timeseries/AAPL?resolution=${raw}`)
    t.ok(clear(b), `resolution=${raw}: ${b.status} ${b.code}`)
  }
  // Ranges of any length: history answers them a page at a time (nothing of 1970–2025 is
  // retained, so one empty page); the export refuses a range with nothing retained.
  for (const resolution of RESOLUTIONS) {
    count('history: huge range')
    const a = await answer(`${p.url}/api/v2/timeseries/AAPL?resolution=${resolution}&start=1970-01-01T00:00:00Z&end=2025-01-01T00:00:00Z`)
    t.equal(a.status, 200, `${resolution} over 55 years: answered as a page`)
    const b = await answer(`${p.url}/api/v2/timeseries/AAPL/export?resolution=${resolution}&start=1970-01-01T00:00:00Z&end=2025-01-01T00:00:00Z`)
    t.ok(clear(b), `export of ${resolution} over 55 years: ${b.status} ${b.code}`)
  }

  // SSE lists are comma-separated and trimmed: leave out lists that are valid after all.
  const parts = (text: string): string[] => text.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
  const sseTicker = badTicker.filter((text) => !parts(text).every((s) => s === 'AAPL' || s === 'MSFT'))
  const sseResolution = badResolution.filter((text) => parts(text).length === 0 || !parts(text).every((s) => RESOLUTIONS.includes(s)))
  await fc.assert(fc.asyncProperty(fc.oneof(
    sseTicker.map((ticker) => `tickers=${enc(ticker)}`),
    sseResolution.map((resolution) => `resolutions=${enc(resolution)}`),
    fc.tuple(sseTicker, badResolution).map(([ticker, resolution]) => `tickers=AAPL,${enc(ticker)}&resolutions=${enc(resolution)}`)
  ), async (query) => {
    count('SSE: query string')
    return clear(await answer(`${p.url}/api/v2/stream?${query}`, { headers: { accept: 'text/event-stream' } }))
  }), { numRuns: 250 })

  t.equal((await fetch(`${p.url}/healthz`)).status, 200, 'the process is still up')
  t.equal(p.pulse.app?.streaming.limiter.count, 0, 'no refused stream kept a connection slot')
  t.equal(await storedDigest(p), before, 'stored buckets unchanged')
  t.comment(`cases: ${JSON.stringify(counts)} — ${Object.values(counts).reduce((a, b) => a + b, 0)} in all`)
})

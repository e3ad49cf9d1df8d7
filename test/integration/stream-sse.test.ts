import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { startTestPulse } from '../helpers/pulse.js'
import { engineUnavailable, ENGINES, item, SseTestClient, until, WsTestClient } from '../helpers/stream-clients.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const MINUTE = 60_000
const run = promisify(execFile)

for (const engine of ENGINES) {
  t.test(`${engine} engine`, { skip: engineUnavailable(engine) }, async (t) => {
    t.test('filters, named events with ids, heartbeat with the connection count', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine, HEARTBEAT_MS: '150' })
      const aapl = new SseTestClient(`${p.url}/api/v2/stream?tickers=AAPL&resolutions=1m,5m`)
      t.teardown(() => aapl.close())
      const all = new SseTestClient(`${p.url}/api/v2/stream`)
      t.teardown(() => all.close())
      await until(() => aapl.opens === 1 && all.opens === 1, 5000, 'open')
      await p.post([item('s1', 'AAPL'), item('s2', 'MSFT'), item('s3', 'NVDA', Date.now() - 10 * MINUTE)])
      await until(() => aapl.state.buckets.size === 2 && all.state.buckets.size === 3, 10_000, 'events')
      await new Promise((resolve) => setTimeout(resolve, 300))
      t.same([...aapl.state.buckets.keys()].map((k) => k.split('@')[0]).sort(), ['AAPL#1m', 'AAPL#5m'])
      t.same([...all.state.buckets.keys()].map((k) => k.split('@')[0]).sort(), ['AAPL#1m', 'MSFT#1m', 'NVDA#1m'], 'default resolution 1m, every ticker')
      t.ok(all.state.of('bucket_update').some((e) => e.ticker === 'NVDA'), 'a late change to a past bucket is a bucket_update')
      t.ok(aapl.state.events.filter((e) => e.bucket !== undefined).every((e) => /^1\.[0-9a-z]*$/.test(e.id ?? '')), 'every bucket event has an id: the stream\'s resume token')
      await until(() => all.state.of('heartbeat').length >= 2, 5000, 'heartbeat')
      t.equal(all.state.of('heartbeat').at(-1)?.connections, 2)
    })

    t.test('bad selections are HTTP errors before the stream starts', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine })
      t.equal((await p.get('/api/v2/stream?tickers=ZZZZ')).body.error.code, 'PULSE_ERR_UNKNOWN_TICKER')
      t.equal((await p.get('/api/v2/stream?resolutions=2m')).status, 400)
    })

    t.test('resume after a forced disconnect mid-burst (Last-Event-ID) ends in the state of an undisturbed client', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine, DEBOUNCE_MS: '50' })
      const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: Number(new URL(p.url).port) }, 'http')
      const query = '/api/v2/stream?tickers=AAPL,MSFT&resolutions=1m,5m,1h'
      const steady = new SseTestClient(`${p.url}${query}`)
      t.teardown(() => steady.close())
      const flaky = new SseTestClient(`${proxy.url}${query}`)
      t.teardown(() => flaky.close())
      await until(() => steady.opens === 1 && flaky.opens === 1, 5000, 'open')

      const now = Date.now()
      let n = 0
      const statuses = new Set<number>()
      const burst = async (rounds: number): Promise<void> => {
        for (let round = 0; round < rounds; round++) {
          const batch = Array.from({ length: 10 }, () => {
            n++
            return item(`r${n}`, n % 3 === 0 ? 'MSFT' : 'AAPL', now - (n % 7) * 40_000, ((n % 11) - 5) / 10)
          })
          statuses.add((await p.post(batch)).status)
        }
      }
      const running = burst(50)
      await until(() => n >= 200 && flaky.state.lastId !== undefined, 15_000, 'mid-burst')
      proxy.drop()
      await running
      await until(() => {
        const total = [...steady.state.buckets.values()].reduce((sum, b) => sum + (b.resolution === '1h' ? b.count : 0), 0)
        return total === n && JSON.stringify(flaky.state.digest()) === JSON.stringify(steady.state.digest())
      }, 20_000, 'same state on both clients')
      t.equal(flaky.opens, 2, 'the EventSource reconnected once')
      t.same(flaky.state.digest(), steady.state.digest())
      t.same([...statuses], [202])
    })

    t.test('curl -N: retry, named events with ids, resume from lastEventId', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine })
      await p.post([item('k0', 'AAPL', Date.now() - 5 * MINUTE)])
      const stream = `${p.url}/api/v2/stream?tickers=AAPL&resolutions=1m`
      const first = run('curl', ['-N', '-s', '--max-time', '3', stream]).catch((err: { stdout: string }) => err)
      await new Promise((resolve) => setTimeout(resolve, 500))
      // The gateway vouches for a series' positions once it has read the series (the stream
      // started that read); a history read waits for it, so k1's event carries a position.
      await p.get('/api/v2/timeseries/AAPL?resolution=1m')
      await p.post([item('k1', 'AAPL', Date.now() - 3 * MINUTE)])
      const { stdout: before } = await first
      // What an EventSource would hand back: the id of the last event it received.
      const token = [...before.matchAll(/^id: (\S+)$/gm)].at(-1)?.[1]
      t.match(token, /^1\.[0-9a-z]+$/, 'the first stream gave its resume token', { stream: before })
      await p.post([item('k2', 'AAPL')])
      await new Promise((resolve) => setTimeout(resolve, 300))
      const { stdout } = await run('curl', ['-N', '-s', '--max-time', '1.5', `${stream}&lastEventId=${token ?? ''}`]).catch((err: { stdout: string }) => err)
      t.match(stdout, /^retry: 1000\n/, 'retry first')
      // k1's event was the last state of its fold in the series: the token covers k1 itself.
      t.match(stdout, /event: resumed\ndata: \{"replayed":1,"not_recovered":\[\]\}/, 'resumed: k2 replayed, nothing lost, nothing twice')
      const events = stdout.split('\n\n').filter((block) => /event: (partial_bucket|bucket_update)/.test(block))
      // A minute boundary inside the curl window adds the finalizer's event for a bucket that ended.
      const timestamps = events.map((block) => (JSON.parse(block.slice(block.indexOf('data: ') + 6)) as { bucket: { timestamp: string } }).bucket.timestamp)
      t.ok(Date.parse(timestamps[0] ?? '') > Date.now() - 2 * MINUTE, `the replay is k2's bucket (${timestamps[0]})`)
      t.ok(timestamps.every((ts) => Date.parse(ts) > Date.now() - 4 * MINUTE), 'k0, which the first stream held from its start, is not replayed')
      for (const block of events) t.match(block, /^id: 1\.[0-9a-z]+\nevent: (partial_bucket|bucket_update)\ndata: \{.*\}$/)
      const fresh = await run('curl', ['-N', '-s', '--max-time', '1.5', `${stream}&lastEventId=1766313305123`]).catch((err: { stdout: string }) => err)
      t.match(fresh.stdout, /event: resumed\ndata: \{"replayed":3,"not_recovered":\["AAPL#1m"\]\}/, 'an id that is no token of this stream: not recovered, the whole window follows')
    })

    t.test('an event stream carries the CORS and security headers every other route gets', async (t) => {
      const origin = 'https://dashboard.example'
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine, ALLOWED_ORIGINS: `${origin},https://other.example` })
      const other = await fetch(`${p.url}/api/v2/tickers`, { headers: { origin } })
      await other.arrayBuffer()
      t.equal(other.headers.get('access-control-allow-origin'), origin, 'the API answers an allowed origin')
      const stream = await fetch(`${p.url}/api/v2/stream?tickers=AAPL`, { headers: { origin, accept: 'text/event-stream' } })
      t.teardown(async () => await stream.body?.cancel())
      t.equal(stream.status, 200)
      t.match(stream.headers.get('content-type'), /^text\/event-stream/)
      t.equal(stream.headers.get('access-control-allow-origin'), origin, 'an EventSource from an allowed origin may read the stream')
      const perResponse = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive', 'transfer-encoding', 'cache-control', 'etag', 'last-modified'])
      const expected = [...other.headers.keys()].filter((name) => !perResponse.has(name) && !name.startsWith('x-ratelimit'))
      t.ok(expected.includes('x-content-type-options') && expected.includes('content-security-policy'), 'helmet headers are on the API response')
      for (const name of expected) t.equal(stream.headers.get(name), other.headers.get(name), `${name} as on the other routes`)
      const foreign = await fetch(`${p.url}/api/v2/stream?tickers=AAPL`, { headers: { origin: 'https://evil.example' } })
      t.teardown(async () => await foreign.body?.cancel())
      t.equal(foreign.headers.get('access-control-allow-origin'), null, 'another origin is not allowed')
    })

    t.test('graceful shutdown: SSE gets retry and the stream ends, WS gets 1012', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine })
      const res = await fetch(`${p.url}/api/v2/stream?tickers=AAPL`)
      const ws = await WsTestClient.open(p.url)
      const body = res.text()
      await new Promise((resolve) => setTimeout(resolve, 100))
      await p.pulse.close()
      const text = await body
      t.match(text, /retry: 1000\n: service restart; reconnect\n\n$/)
      t.equal(await ws.closedPromise, 1012)
    })
  })
}

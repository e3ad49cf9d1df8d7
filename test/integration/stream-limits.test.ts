import t from 'tap'
import WebSocket from 'ws'
import { bucketStart, RESOLUTIONS } from '../../shared/timeseries/index.js'
import { startTestPulse } from '../helpers/pulse.js'
import { engineUnavailable, ENGINES, item, until, WsTestClient } from '../helpers/stream-clients.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const MINUTE = 60_000

/** Status and Retry-After of a refused WebSocket upgrade. */
async function refusedUpgrade (url: string, options: WebSocket.ClientOptions = {}): Promise<{ status: number, retryAfter: string | undefined }> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v2/ws`, options)
  return await new Promise((resolve, reject) => {
    socket.once('unexpected-response', (_request, response) => {
      resolve({ status: response.statusCode ?? 0, retryAfter: response.headers['retry-after'] })
      socket.terminate()
    })
    socket.once('open', () => reject(new Error('upgrade was accepted')))
    socket.on('error', () => {})
  })
}

for (const engine of ENGINES) {
  t.test(`${engine} engine`, { skip: engineUnavailable(engine) }, async (t) => {
    t.test('MAX_CONNECTIONS counts WS and SSE together: 503 with Retry-After on both', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine, MAX_CONNECTIONS: '3', HEARTBEAT_MS: '100' })
      const a = await WsTestClient.open(p.url)
      const b = await WsTestClient.open(p.url)
      t.teardown(() => b.close())
      const sse = await fetch(`${p.url}/api/v2/stream`)
      t.teardown(async () => await sse.body?.cancel())
      t.equal(sse.status, 200)
      const refused = await refusedUpgrade(p.url)
      t.same(refused, { status: 503, retryAfter: '5' })
      const refusedSse = await fetch(`${p.url}/api/v2/stream`)
      t.equal(refusedSse.status, 503)
      t.equal(refusedSse.headers.get('retry-after'), '5')
      t.equal(((await refusedSse.json()) as { error: { code: string } }).error.code, 'PULSE_ERR_TOO_MANY_CONNECTIONS')
      await until(() => b.state.of('heartbeat').some((h) => h.connections === 3), 5000, 'heartbeat counting WS and SSE')
      t.pass('the heartbeat counts both transports')
      a.close()
      await until(() => p.pulse.app?.streaming.limiter.count === 2, 5000, 'slot released')
      const c = await WsTestClient.open(p.url)
      t.teardown(() => c.close())
      t.pass('a freed slot is usable again')
    })

    t.test('bad messages get error events and the connection stays open', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine })
      const client = await WsTestClient.open(p.url)
      t.teardown(() => client.close())
      client.send('garbage')
      client.send({ op: 'nope' })
      client.send({ op: 'subscribe', tickers: ['ZZZZ'], resolutions: ['1m'] })
      client.send({ op: 'subscribe', tickers: ['AAPL'], resolutions: ['2m'] })
      client.send({ op: 'subscribe', tickers: ['AAPL'], resolutions: ['1m'], since: 'yesterday' })
      client.send({ op: 'subscribe', tickers: 'AAPL', resolutions: ['1m'] })
      client.socket.send(Buffer.from([1, 2, 3]), { binary: true })
      await until(() => client.state.of('error').length === 7, 5000, 'errors')
      t.same(client.state.of('error').map((e) => e.code).sort(), [
        'PULSE_ERR_BAD_MESSAGE', 'PULSE_ERR_BAD_MESSAGE', 'PULSE_ERR_BAD_MESSAGE', 'PULSE_ERR_BAD_MESSAGE',
        'PULSE_ERR_BAD_MESSAGE', 'PULSE_ERR_BAD_RESOLUTION', 'PULSE_ERR_UNKNOWN_TICKER'
      ])
      client.send({ op: 'ping' })
      await until(() => client.state.of('pong').length === 1, 5000, 'pong')
      t.equal(client.closeCode, undefined, 'still open')
    })

    t.test('a message over 16 KB closes the socket with 1009', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine })
      const client = await WsTestClient.open(p.url)
      client.send(JSON.stringify({ op: 'ping', pad: 'x'.repeat(17 * 1024) }))
      t.equal(await client.closedPromise, 1009)
    })

    t.test('at most 200 subscriptions per client', async (t) => {
      const tickers = Array.from({ length: 30 }, (_, i) => `T${i}`)
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine, TICKERS: tickers.join(',') })
      const client = await WsTestClient.open(p.url)
      t.teardown(() => client.close())
      const all = ['1m', '5m', '10m', '1h', '3h', '6h', '12h', '24h']
      await client.subscribe(tickers, all)
      t.equal(client.state.of('error')[0]?.code, 'PULSE_ERR_TOO_MANY_SUBSCRIPTIONS')
      const ok = await client.subscribe(tickers.slice(0, 25), all)
      t.equal(ok.subscriptions, 200)
      client.send({ op: 'subscribe', tickers: ['T29'], resolutions: ['1m'] })
      await until(() => client.state.of('error').length === 2, 5000, 'second refusal')
      t.equal(client.state.of('error')[1]?.code, 'PULSE_ERR_TOO_MANY_SUBSCRIPTIONS')
      t.equal((await p.get('/api/v2/stream?tickers=' + tickers.join(',') + '&resolutions=1m,5m,10m,1h,3h,6h,12h')).body.error.code, 'PULSE_ERR_TOO_MANY_SUBSCRIPTIONS')
    })

    t.test('a flood is throttled with error events, then disconnected', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine })
      const client = await WsTestClient.open(p.url)
      for (let i = 0; i < 1000; i++) client.send({ op: 'ping' })
      t.equal(await client.closedPromise, 1008)
      const pongs = client.state.of('pong').length
      t.ok(pongs > 0 && pongs < 1000, `${pongs} pings answered`)
      t.ok(client.state.of('error').some((e) => e.code === 'PULSE_ERR_FLOOD'), 'warned before the disconnect')
    })

    t.test('READ_TOKEN and ALLOWED_ORIGINS', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine, READ_TOKEN: 'read-secret', ALLOWED_ORIGINS: 'https://ok.example' })
      t.equal((await fetch(`${p.url}/api/v2/stream`)).status, 401)
      const withToken = await fetch(`${p.url}/api/v2/stream?token=read-secret`)
      t.equal(withToken.status, 200)
      await withToken.body?.cancel()
      t.equal((await refusedUpgrade(p.url)).status, 401)
      t.equal((await refusedUpgrade(p.url, { headers: { authorization: 'Bearer read-secret' }, origin: 'https://evil.example' })).status, 403)
      const client = await WsTestClient.open(p.url, '', { headers: { authorization: 'Bearer read-secret' }, origin: 'https://ok.example' })
      client.close()
      t.pass('allowed origin with the token connects')
    })

    t.test('a stalled client costs bounded memory and does not delay a healthy one', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine, HEARTBEAT_MS: '300', DEBOUNCE_MS: '20' })
      const hub = p.pulse.app?.streaming
      if (hub === undefined) throw new Error('no hub')
      const tickers = p.pulse.config.tickers
      const all = ['1m', '5m', '10m', '1h', '3h', '6h', '12h', '24h']
      const healthy = await WsTestClient.open(p.url)
      t.teardown(() => healthy.close())
      await healthy.subscribe(tickers, all)
      const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: Number(new URL(p.url).port) }, 'http')
      const stalled = await WsTestClient.open(proxy.url)
      t.teardown(() => stalled.close())
      await stalled.subscribe(tickers, all)
      // Stop reading: the kernel buffers fill, then the gateway's own.
      proxy.stall()

      // Many distinct buckets per batch and a new source per item: the long buckets' source lists grow, so flushes are large.
      const now = Date.now()
      let posted = 0
      const buckets = new Set<string>()
      let maxBuffered = 0
      let maxPending = 0
      const sampler = setInterval(() => {
        const stats = hub.stats()
        maxBuffered = Math.max(maxBuffered, stats.buffered)
        maxPending = Math.max(maxPending, stats.maxPending)
      }, 10)
      t.teardown(() => clearInterval(sampler))
      for (let batch = 0; batch < 20; batch++) {
        const items: Array<Record<string, unknown>> = Array.from({ length: 1000 }, (_, i) => {
          const n = batch * 1000 + i
          return { ...item(`st${n}`, tickers[n % tickers.length], now - ((n * 7919) % 55) * MINUTE - (n % 50) * 1000, ((n % 21) - 10) / 10), source: `source-${String(n).padStart(24, '0')}` }
        })
        for (const it of items) for (const r of RESOLUTIONS) buckets.add(`${it.ticker as string}#${r}@${bucketStart(Date.parse(it.timestamp as string), r)}`)
        if ((await p.post(items)).status !== 202) t.fail('a batch was refused')
        posted += items.length
      }
      const dayTotal = (): number => [...healthy.state.buckets.values()].reduce((sum, b) => sum + (b.resolution === '24h' ? b.count : 0), 0)
      await until(() => dayTotal() === posted, 60_000, 'healthy client has every update')
      t.pass('the healthy client got the final state while the other one was not reading')
      // One state per bucket at most: 13 tickers × (56 1m + 12 5m + 6 10m + 2 of each longer) buckets.
      await until(() => hub.stats().connections === 1, 30_000, 'stalled client disconnected')
      clearInterval(sampler)
      t.pass('the stalled client was disconnected')
      t.ok(maxBuffered > 64 * 1024, 'the gateway did see the backpressure')
      t.ok(maxPending <= buckets.size, `at most one pending state per bucket (max ${maxPending} for ${buckets.size} buckets and ${posted} items)`)
      t.ok(maxBuffered < 2 * 1024 * 1024, `buffered bytes stay bounded (max ${maxBuffered})`)
    })
  })
}

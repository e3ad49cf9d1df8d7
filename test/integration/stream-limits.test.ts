import t from 'tap'
import WebSocket from 'ws'
import { startTestPulse } from '../helpers/pulse.js'
import { engineUnavailable, ENGINES, until, WsTestClient } from '../helpers/stream-clients.js'

// A long file: on a loaded machine it outlasts tap's default per-file timeout.
t.setTimeout(300_000)

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
      client.send({ op: 'subscribe', tickers: ['AAPL'], resolutions: ['1m'], positions: { 'AAPL#1m': 'yesterday' } })
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
  })
}

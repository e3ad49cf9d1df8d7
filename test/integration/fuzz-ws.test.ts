import fc from 'fast-check'
import t from 'tap'
import { nastyString, storedDigest, wrongValue } from '../helpers/hostile.js'
import { eventually, startTestPulse } from '../helpers/pulse.js'
import { until, WsTestClient } from '../helpers/stream-clients.js'

const anyValue = fc.oneof(wrongValue, nastyString, fc.jsonValue({ maxDepth: 3 }))
const badMessage = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)).filter((text) => !/"op"/.test(text)),
  fc.record({ op: fc.oneof(nastyString, fc.constantFrom('SUBSCRIBE', 'sub', '', '__proto__'), wrongValue) }).map((m) => JSON.stringify(m)),
  fc.record({ op: fc.constantFrom('subscribe', 'unsubscribe'), tickers: fc.oneof(wrongValue, fc.array(nastyString, { minLength: 1, maxLength: 3 })), resolutions: fc.constant(['1m']) }).map((m) => JSON.stringify(m)),
  fc.record({ op: fc.constant('subscribe'), tickers: fc.constant(['AAPL']), resolutions: fc.oneof(wrongValue, fc.array(nastyString, { minLength: 1, maxLength: 3 })) }).map((m) => JSON.stringify(m)),
  fc.record({ op: fc.constant('subscribe'), tickers: fc.constant(['AAPL']), resolutions: fc.constant(['1m']), positions: fc.oneof(wrongValue.filter((v) => typeof v !== 'object' || v === null || Array.isArray(v) || Object.keys(v).length > 0), nastyString, fc.dictionary(fc.string({ maxLength: 8 }), wrongValue, { minKeys: 1, maxKeys: 3 })) }).map((m) => JSON.stringify(m)),
  fc.record({ op: fc.constant('snapshot'), id: anyValue, ticker: fc.oneof(nastyString, wrongValue), resolution: fc.constant('1h') }).map((m) => JSON.stringify(m)),
  fc.record({ op: fc.constant('snapshot'), id: fc.constant('r'), ticker: fc.constant('AAPL'), resolution: fc.oneof(nastyString, wrongValue) }).map((m) => JSON.stringify(m)),
  fc.string({ maxLength: 200 }).map((s) => `{${s}`),
  fc.constantFrom('', 'null', 'NaN', '{"op":"ping"', '[{"op":"ping"}]', '\u0000', '{"op":"subscribe","tickers":["AAPL"],"resolutions":["1m"],"extra":{"__proto__":{"x":1}}}')
)

t.test('WebSocket messages: every hostile message gets an error event with a code; the socket stays open; nothing changes', async (t) => {
  // Heartbeats are not replies: a run slower than the default 15 s interval would count one.
  const p = await startTestPulse(t, { TICKERS: 'AAPL,MSFT', HEARTBEAT_MS: '3600000' })
  t.equal((await p.post([{ id: 'w1', ticker: 'AAPL', timestamp: new Date().toISOString(), score: 0.3, source: 'tiingo' }])).status, 202)
  await eventually(async () => (await storedDigest(p)).includes('AAPL') && (await storedDigest(p)).includes('queue=0') ? true : undefined)
  const before = await storedDigest(p)
  const samples = fc.sample(badMessage, { numRuns: 600, seed: 7 })
  let client = await WsTestClient.open(p.url)
  t.teardown(() => client.close())
  const codes = new Map<string, number>()
  let replies = 0
  let sent = 0
  let unanswered = 0
  let closed = 0
  // 40 messages per connection (the flood guard allows bursts of 50), then a fresh one.
  for (const message of samples) {
    if (sent > 0 && sent % 40 === 0) {
      if (client.closeCode !== undefined) closed++
      client.close()
      client = await WsTestClient.open(p.url)
    }
    const seen = client.state.events.length
    client.send(message)
    sent++
    await until(() => client.state.events.slice(seen).some((e) => e.type !== 'heartbeat'), 2000).catch(() => { unanswered++ })
    for (const event of client.state.events.slice(seen)) {
      // The gateway's heartbeat may land between two replies when a run is slow; it is no reply.
      if (event.type === 'heartbeat') continue
      replies++
      const code = event.type === 'error' ? String(event.code) : event.type
      codes.set(code, (codes.get(code) ?? 0) + 1)
    }
  }
  const errorCodes = [...codes.keys()].filter((k) => k.startsWith('PULSE_ERR'))
  t.comment(`WS: ${sent} hostile messages on ${Math.ceil(sent / 40)} connections → ${replies} replies ${JSON.stringify(Object.fromEntries(codes))}`)
  t.equal(unanswered, 0, 'every message got a reply')
  t.same([...codes.keys()].filter((k) => !k.startsWith('PULSE_ERR')), [], 'every reply is an error event (no hostile message was taken as valid)')
  t.ok(errorCodes.every((c) => /^PULSE_ERR_[A-Z_]+$/.test(c)), 'every error has a catalogue code')
  t.equal(closed, 0, 'no connection was closed for a bad message')

  // A message over 16 KB closes with 1009.
  const big = await WsTestClient.open(p.url)
  big.send(JSON.stringify({ op: 'ping', pad: 'x'.repeat(16 * 1024) }))
  t.equal(await big.closedPromise, 1009, 'a 16 KB+ message closes the socket with 1009')
  // A flood: throttled with PULSE_ERR_FLOOD, then disconnected with 1008.
  const flood = await WsTestClient.open(p.url)
  for (let i = 0; i < 400 && flood.closeCode === undefined; i++) flood.send({ op: 'ping' })
  t.equal(await flood.closedPromise, 1008, 'a client sending 400 pings at once is disconnected with 1008')
  t.ok(flood.state.of('error').some((e) => e.code === 'PULSE_ERR_FLOOD'), 'after being warned with PULSE_ERR_FLOOD')
  t.ok(flood.state.of('pong').length >= 40 && flood.state.of('pong').length <= 60, `the burst allowance was served first (${flood.state.of('pong').length} pongs)`)

  t.equal((await fetch(`${p.url}/healthz`)).status, 200, 'the process is still up')
  t.equal(await storedDigest(p), before, 'stored buckets unchanged')
})

t.test('connection flood: at MAX_CONNECTIONS the WS upgrade and SSE get 503 with Retry-After', async (t) => {
  const p = await startTestPulse(t, { MAX_CONNECTIONS: '5' })
  const clients = await Promise.all(Array.from({ length: 5 }, async () => await WsTestClient.open(p.url)))
  t.teardown(() => { for (const c of clients) c.close() })
  const sse = await fetch(`${p.url}/api/v2/stream`)
  t.equal(sse.status, 503, 'SSE: 503')
  t.ok(Number(sse.headers.get('retry-after')) > 0, 'SSE: Retry-After')
  t.equal(((await sse.json()) as { error: { code: string } }).error.code, 'PULSE_ERR_TOO_MANY_CONNECTIONS', 'SSE: PULSE_ERR_TOO_MANY_CONNECTIONS')
  const refused = new WsTestClient(`${p.url.replace('http', 'ws')}/api/v2/ws`)
  const status = await new Promise<number>((resolve) => refused.socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))
  t.equal(status, 503, 'WS upgrade: 503')
  clients[0]?.close()
  await eventually(() => p.pulse.app?.streaming.limiter.count === 4 ? true : undefined, 5000, 'a slot to free')
  const again = await WsTestClient.open(p.url)
  t.teardown(() => again.close())
  t.pass('a slot freed by a closed client is taken by the next one')
})

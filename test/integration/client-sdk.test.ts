import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { ClientMessageSchema } from '../../services/gateway/streaming/protocol.js'
import { MAX_SUBSCRIPTIONS } from '../../shared/stream-limits.js'
import { isNewerState } from '../../shared/timeseries/revision.js'
import { type Bucket, connect, type ConnectionState, type PulseClient, PulseClientError, type WebSocketConstructor } from '../../web/client/src/index.js'
import { startDynaliteProcess } from '../helpers/processes.js'
import { clearOfMinuteBoundary, eventually, startTestPulse, type TestPulse } from '../helpers/pulse.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

/*
 * The client SDK in Node against real gateways: embedded Pulse, and a cluster of gateways
 * over Redis for failover. Every message the SDK sends is checked against the gateway's
 * schemas, and every bucket state it hands out is checked against the merge rule.
 */

const checkMessage = TypeCompiler.Compile(ClientMessageSchema)

/** `ws`, recording every message the SDK sends. */
function recordingWebSocket (sent: Array<Record<string, unknown>>): WebSocketConstructor {
  return class extends WebSocket {
    override send (data: unknown, ...rest: unknown[]): void {
      sent.push(JSON.parse(String(data)) as Record<string, unknown>)
      // `unknown[]`: the rest are ws's own optional arguments, passed through untouched.
      ;(super.send as (...args: unknown[]) => void)(data, ...rest)
    }
  } as unknown as WebSocketConstructor
}

interface Harness {
  client: PulseClient
  sent: Array<Record<string, unknown>>
  states: ConnectionState[]
  errors: PulseClientError[]
  /** Every bucket state handed out, in order. */
  handed: Bucket[]
  onBucket: (bucket: Bucket) => void
  /** States handed out that were not newer than one handed out before (must stay empty). */
  older: string[]
  /** The newest state handed out of each bucket. */
  latest: () => Map<string, Bucket>
}

function harness (t: Test, url: string, options: Partial<Parameters<typeof connect>[0]> = {}): Harness {
  const sent: Array<Record<string, unknown>> = []
  const handed: Bucket[] = []
  const older: string[] = []
  const last = new Map<string, Bucket>()
  const client = connect({ url, WebSocket: recordingWebSocket(sent), backoff: { baseMs: 50, capMs: 400 }, ...options })
  t.teardown(() => client.close())
  const states: ConnectionState[] = [client.state]
  const errors: PulseClientError[] = []
  client.on('state', (state) => states.push(state))
  client.on('error', (err) => errors.push(err))
  const onBucket = (bucket: Bucket): void => {
    const id = `${bucket.ticker}#${bucket.resolution}@${bucket.timestamp}`
    if (!isNewerState(bucket, last.get(id))) older.push(`${id} rev ${bucket.rev} after ${last.get(id)?.rev ?? '-'}`)
    last.set(id, bucket)
    handed.push(bucket)
  }
  return { client, sent, states, errors, handed, onBucket, older, latest: () => last }
}

/**
 * Items counted over the newest states of every bucket of `resolution` handed out: the items
 * a test posts may straddle an hour (or any) boundary, so no single bucket is asserted on.
 */
function countOf (h: Harness, resolution: string): number {
  return [...h.latest().values()].filter((b) => b.resolution === resolution).reduce((sum, b) => sum + b.count, 0)
}

/** Every message the SDK sent is one the gateway's schema accepts. */
function checkSent (t: Test, sent: ReadonlyArray<Record<string, unknown>>): void {
  const bad = sent.filter((message) => !checkMessage.Check(message))
  t.same(bad, [], `all ${sent.length} client messages match the protocol's schemas`)
}

function item (ticker: string, id: string, ts: number, score = 0.3): Record<string, unknown> {
  return { id, ticker, timestamp: new Date(ts).toISOString(), score, source: 'sdk' }
}

t.test('snapshot first, then live states; messages match the schemas', async (t) => {
  const p = await startTestPulse(t)
  const now = Date.now()
  t.equal((await p.post([item('AAPL', 'h1', now - 3 * 60_000), item('AAPL', 'h2', now - 2 * 60_000), item('AAPL', 'h3', now - 60_000)])).status, 202)
  // Folded before the client subscribes, so the snapshot is what holds them.
  await eventually(async () => {
    const { body } = await p.get('/api/v2/timeseries/AAPL?resolution=1m')
    const held = [...body.buckets as Bucket[], ...body.partial_bucket === null ? [] : [body.partial_bucket as Bucket]]
    return held.reduce((sum, b) => sum + b.count, 0) === 3 ? true : undefined
  }, 10_000, 'the three items folded')
  const h = harness(t, p.url)
  const snapshots: string[] = []
  const sub = h.client.subscribe('AAPL', ['1m', '5m'], h.onBucket)
  sub.on('snapshot', (ticker, resolution) => snapshots.push(`${ticker}#${resolution}`))
  await sub.ready
  t.equal(sub.state, 'live')
  t.same(snapshots.sort(), ['AAPL#1m', 'AAPL#5m'], 'a snapshot of each series')
  const fromSnapshot = h.handed.length
  t.ok(h.handed.filter((b) => b.resolution === '1m').length >= 3, 'the snapshot holds the history')
  t.equal(h.client.state, 'live')

  await clearOfMinuteBoundary(5000)
  t.equal((await p.post([item('AAPL', 'live1', Date.now(), -0.2)])).status, 202)
  const live = await eventually(() => h.handed.slice(fromSnapshot).find((b) => b.resolution === '1m'), 20_000, 'the live state')
  t.ok(live.is_partial, 'the current bucket, live')
  const history = await h.client.history('AAPL', '1m')
  const server = new Map([...history.buckets, ...history.partial_bucket === null ? [] : [history.partial_bucket]].map((b) => [b.timestamp, b.rev]))
  await eventually(() => [...server].every(([ts, rev]) => h.latest().get(`AAPL#1m@${ts}`)?.rev === rev) ? true : undefined, 5000, 'the client to hold the server state')
  t.same(h.older, [], 'never a state older than one handed out')
  t.same(h.sent.map((m) => m.op), ['subscribe', 'snapshot', 'snapshot'], 'one subscribe for both series, then a snapshot of each')
  checkSent(t, h.sent)
})

t.test('the gateway limits as typed errors, and the message budget kept', async (t) => {
  const tickers = Array.from({ length: 40 }, (_, i) => `T${i}`)
  const p = await startTestPulse(t, { TICKERS: tickers.join(',') })
  const h = harness(t, p.url)
  const all = ['1m', '5m', '10m', '1h', '3h', '6h', '12h', '24h'] as const
  for (const ticker of tickers.slice(0, 25)) h.client.subscribe(ticker, all, h.onBucket, { snapshot: false })
  t.equal(h.client.watching, MAX_SUBSCRIPTIONS)
  const thrown = (fn: () => unknown): unknown => { try { fn() } catch (err) { return err } }
  const over = thrown(() => h.client.subscribe('T30', '1m', h.onBucket))
  t.ok(over instanceof PulseClientError && over.code === 'PULSE_ERR_TOO_MANY_SUBSCRIPTIONS', 'one series more is refused at once')
  const bad = thrown(() => h.client.subscribe('T30', '2m' as '1m', h.onBucket))
  t.ok(bad instanceof PulseClientError && bad.code === 'PULSE_ERR_BAD_RESOLUTION')

  // Churn: close and reopen subscriptions far faster than the gateway's 25 messages a second.
  const subs = new Map<string, ReturnType<PulseClient['subscribe']>>()
  const close = (): void => { for (const sub of subs.values()) sub.close(); subs.clear() }
  h.client.close()
  const c = harness(t, p.url)
  for (let round = 0; round < 60; round++) {
    close()
    for (const ticker of tickers.slice(round % 10, (round % 10) + 5)) subs.set(ticker, c.client.subscribe(ticker, ['1m', '5m'], c.onBucket, { snapshot: { windowMs: 600_000 } }))
    await sleep(5)
  }
  await Promise.all([...subs.values()].map(async (sub) => await sub.ready))
  t.ok(c.sent.length > 60, `${c.sent.length} messages sent`)
  t.same(c.errors.map((e) => e.code), [], 'no PULSE_ERR_FLOOD: the SDK paced itself within the budget')
  t.notOk(c.states.includes('reconnecting'), 'the connection was never closed for flooding')

  const unknown = c.client.subscribe('NOPE', '1m', c.onBucket)
  const refused = await unknown.ready.then(() => undefined, (err: unknown) => err)
  t.ok(refused instanceof PulseClientError && refused.code === 'PULSE_ERR_UNKNOWN_TICKER', 'an unknown ticker fails its subscription with the gateway\'s code')
  t.equal(unknown.state, 'failed')
  checkSent(t, c.sent)
})

/** An HTTP proxy to `target` that refuses every WebSocket upgrade, as some corporate proxies do. */
async function upgradeRefusingProxy (t: Test, target: string): Promise<string> {
  const { hostname, port } = new URL(target)
  const server = createServer((req, res) => {
    const upstream = httpRequest({ hostname, port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => res.destroy())
    req.pipe(upstream)
    res.on('close', () => upstream.destroy())
  })
  server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('SSE fallback when the WebSocket upgrade is refused: snapshot over HTTP, live over the event stream', async (t) => {
  const p = await startTestPulse(t)
  const now = Date.now()
  t.equal((await p.post([item('MSFT', 'f1', now - 120_000)])).status, 202)
  const url = await upgradeRefusingProxy(t, p.url)
  const h = harness(t, url)
  const sub = h.client.subscribe('MSFT', ['1m', '1h'], h.onBucket)
  await sub.ready
  t.equal(h.client.state, 'fallback', 'live over SSE')
  t.ok(h.handed.some((b) => b.resolution === '1m' && b.count === 1), 'the snapshot came over HTTP')
  await clearOfMinuteBoundary(5000)
  t.equal((await p.post([item('MSFT', 'f2', Date.now())])).status, 202)
  await eventually(() => countOf(h, '1h') === 2 ? true : undefined, 10_000, 'the live 1h state over SSE')
  // A changed selection reopens the stream, resuming; the new series gets its snapshot.
  const more = h.client.subscribe('MSFT', '5m', h.onBucket)
  await more.ready
  const fiveMinute = [...h.latest().values()].filter((b) => b.resolution === '5m')
  t.equal(fiveMinute.reduce((sum, b) => sum + b.count, 0), 2, 'the added series, snapshot first: both items')
  t.equal(h.client.state, 'fallback')
  t.same(h.sent, [], 'nothing went over a WebSocket')
  t.same(h.older, [])
})

t.test('the token supplier is asked again on every connection; a refused token is a typed error', async (t) => {
  const p = await startTestPulse(t, { READ_TOKEN: 'sdk-read-token' })
  const port = new URL(p.url).port
  let calls = 0
  // The first attempt (WebSocket, then SSE at once) gets a stale token; later ones the right one.
  const h = harness(t, p.url, { token: async () => ++calls <= 2 ? 'stale' : 'sdk-read-token' })
  const sub = h.client.subscribe('AAPL', '1m', h.onBucket)
  await sub.ready
  t.ok(h.errors.some((e) => e.code === 'PULSE_ERR_UNAUTHORIZED' && e.status === 401), 'the wrong token was refused with PULSE_ERR_UNAUTHORIZED')
  t.equal(h.client.state, 'live', 'live once the supplier gave the right token')
  const before = calls

  // The gateway restarts on the same port: the client reconnects, asking for a token again.
  await p.pulse.close()
  await eventually(() => h.states.includes('reconnecting') ? true : undefined, 10_000, 'reconnecting')
  const again = await startTestPulse(t, { READ_TOKEN: 'sdk-read-token', DATA_DIR: p.dataDir, PORT: port })
  await eventually(() => h.client.state === 'live' ? true : undefined, 20_000, 'live again')
  t.ok(calls > before, `the supplier was called again on reconnect (${before} → ${calls})`)
  t.equal((await again.post([item('AAPL', 'tok1', Date.now())])).status, 202)
  await eventually(() => h.handed.find((b) => b.sources.includes('sdk')), 10_000, 'a live state after the restart')
  t.equal((await h.client.history('AAPL', '1m')).ticker, 'AAPL', 'history requests carry the token')
  t.same(h.older, [])
})

t.test('a gateway lost mid-stream: the client reconnects to another gateway and resumes there', async (t) => {
  // Two gateways and a worker of one cluster (Redis, DynamoDB on dynalite), in this process.
  const redis = await startRedisServer(t)
  const dynalite = await startDynaliteProcess(t)
  const env = { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: `sdk${randomBytes(3).toString('hex')}`, TICKERS: 'AAPL,MSFT', FLUSH_INTERVAL_MS: '500' }
  await startTestPulse(t, { ...env, ROLE: 'worker' })
  const a = await startTestPulse(t, { ...env, ROLE: 'gateway' })
  const b = await startTestPulse(t, { ...env, ROLE: 'gateway' })
  // The load balancer: gateway A, then B once A is gone.
  const target = { host: '127.0.0.1', port: Number(new URL(a.url).port) }
  const lb = await startTcpProxy(t, target, 'http')
  const post = async (gateway: TestPulse, items: unknown[]): Promise<void> => {
    t.equal((await gateway.post(items)).status, 202)
  }
  const count1h = (n: number) => () => countOf(h, '1h') === n ? true : undefined
  await clearOfMinuteBoundary(20_000)
  const start = Date.now()
  await post(a, [item('AAPL', 'k1', start - 90_000), item('AAPL', 'k2', start - 30_000)])
  const h = harness(t, lb.url)
  const sub = h.client.subscribe('AAPL', ['1m', '1h'], h.onBucket)
  await sub.ready
  await eventually(count1h(2), 30_000, 'the first items')
  await post(a, [item('AAPL', 'k3', Date.now())])
  await eventually(count1h(3), 30_000, 'a live state through gateway A')
  const sentBefore = h.sent.length

  // Gateway A is lost: its connections cut without a close frame, as when its process dies.
  target.port = Number(new URL(b.url).port)
  lb.drop()
  await a.pulse.close()
  // Items accepted while the client is away: the resume must bring them.
  await post(b, [item('AAPL', 'k4', Date.now()), item('AAPL', 'k5', Date.now() - 45_000)])
  await eventually(() => h.states.includes('reconnecting') ? true : undefined, 20_000, 'reconnecting')
  await eventually(() => h.client.state === 'live' ? true : undefined, 30_000, 'live on gateway B')
  await eventually(count1h(5), 30_000, 'the missed items, resumed')

  const after = h.sent.slice(sentBefore)
  t.ok(after.some((m) => m.op === 'subscribe' && typeof m.positions === 'object' && Object.keys(m.positions as object).length === 2), 'the subscribe on gateway B resumes both series from their positions')
  t.notOk(after.some((m) => m.op === 'snapshot'), 'recovered: no fresh snapshot was needed')
  for (const resolution of ['1m', '1h'] as const) {
    const history = (await b.get(`/api/v2/timeseries/AAPL?resolution=${resolution}`)).body as { buckets: Bucket[], partial_bucket: Bucket | null }
    for (const bk of [...history.buckets, ...history.partial_bucket === null ? [] : [history.partial_bucket]]) {
      t.equal(h.latest().get(`AAPL#${resolution}@${bk.timestamp}`)?.rev, bk.rev, `${resolution} ${bk.timestamp}: the client holds the gateway's state`)
    }
  }
  t.same(h.older, [], 'never a state older than one handed out, across the failover')
  checkSent(t, h.sent)
})

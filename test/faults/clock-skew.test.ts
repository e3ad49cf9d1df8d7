import { randomBytes } from 'node:crypto'
import t from 'tap'
import { armFaults } from '../../shared/fault-points.js'
import { startDynaliteProcess } from '../helpers/processes.js'
import { clearOfMinuteBoundary, eventually, startTestPulse } from '../helpers/pulse.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { item, SseTestClient, until, WsTestClient } from '../helpers/stream-clients.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

/*
 * The Redis servers of a deployment may keep clocks minutes apart (each Redis Cluster master
 * stamps its tickers' buckets with its own TIME). Here the clock MSFT's buckets are stamped
 * with runs 5 minutes ahead (a fault point on the clock the hot state uses). A plain
 * EventSource and a plain WebSocket client watch AAPL and MSFT through a load balancer on
 * gateway A; the last thing they see is an MSFT state; A dies; AAPL changes while they are
 * away; they come back on gateway B with what they held (`Last-Event-ID`, `positions`).
 * A resume that compares times replays from MSFT's clock and never sends AAPL's change; a
 * resume by position sends it.
 */

const QUERY = 'tickers=AAPL,MSFT&resolutions=1m,1h'

t.test('Redis clocks 5 minutes apart: a client resuming on another gateway misses nothing', async (t) => {
  armFaults('hot.clock.MSFT=skew:300000')
  t.teardown(() => armFaults(''))
  const redis = await startRedisServer(t)
  const dynalite = await startDynaliteProcess(t)
  const env = { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: `skew${randomBytes(3).toString('hex')}`, TICKERS: 'AAPL,MSFT', FLUSH_INTERVAL_MS: '500', DEBOUNCE_MS: '10' }
  await startTestPulse(t, { ...env, ROLE: 'worker' })
  const a = await startTestPulse(t, { ...env, ROLE: 'gateway' })
  const b = await startTestPulse(t, { ...env, ROLE: 'gateway' })
  const target = { host: '127.0.0.1', port: Number(new URL(a.url).port) }
  const lb = await startTcpProxy(t, target, 'http')

  const reference = new SseTestClient(`${b.url}/api/v2/stream?${QUERY}`)
  const sse = new SseTestClient(`${lb.url}/api/v2/stream?${QUERY}`)
  const ws = await WsTestClient.open(lb.url)
  t.teardown(() => { reference.close(); sse.close(); ws.close() })
  await ws.subscribe(['AAPL', 'MSFT'], ['1m', '1h'])
  await until(() => reference.opens > 0 && sse.opens > 0, 10_000, 'streams open')

  await clearOfMinuteBoundary(20_000)
  t.equal((await a.post([item('s1', 'AAPL')])).status, 202)
  await until(() => sse.state.events.some((e) => e.bucket?.ticker === 'AAPL') && ws.state.events.some((e) => e.bucket?.ticker === 'AAPL'), 10_000, 'AAPL live')
  t.equal((await a.post([item('s2', 'MSFT')])).status, 202)
  await until(() => sse.state.events.at(-1)?.bucket?.ticker === 'MSFT' && ws.state.events.at(-1)?.bucket?.ticker === 'MSFT', 10_000, 'MSFT last')
  const msft = sse.state.events.at(-1)?.bucket as unknown as { last_updated: string }
  t.ok(Date.parse(msft.last_updated) > Date.now() + 240_000, `MSFT's clock runs ahead: last_updated ${msft.last_updated}`)

  // Gateway A is lost; AAPL changes on gateway B while both clients are away (the
  // EventSource comes back after the stream's `retry: 1000`).
  const held = { ...ws.state.positions }
  const wsHeld = new Map(ws.state.buckets)
  target.port = Number(new URL(b.url).port)
  lb.drop()
  ws.close()
  t.equal((await b.post([item('s3', 'AAPL'), item('s4', 'AAPL', Date.now() - 60_000)])).status, 202)
  const aaplCount = (): number => [...reference.state.buckets.values()].filter((bk) => bk.ticker === 'AAPL' && bk.resolution === '1h').reduce((sum, bk) => sum + bk.count, 0)
  await until(() => aaplCount() === 3, 10_000, 'AAPL changed on gateway B')
  t.equal(sse.opens, 1, 'AAPL changed before the EventSource came back')
  await a.pulse.close()

  const resumed = await WsTestClient.open(lb.url)
  t.teardown(() => resumed.close())
  for (const [key, bucket] of wsHeld) resumed.state.buckets.set(key, bucket)
  await resumed.subscribe(['AAPL', 'MSFT'], ['1m', '1h'], held)
  await until(() => sse.opens === 2, 15_000, 'the EventSource back on gateway B')

  const same = (client: SseTestClient | WsTestClient): boolean => JSON.stringify(client.state.digest()) === JSON.stringify(reference.state.digest())
  await eventually(async () => same(sse) && same(resumed) ? true : undefined, 10_000, 'both clients to hold gateway B\'s state').catch(() => {})
  t.same(sse.state.digest(), reference.state.digest(), 'the EventSource resumed with Last-Event-ID holds every state, AAPL\'s change included')
  t.same(resumed.state.digest(), reference.state.digest(), 'the WebSocket client resumed on gateway B holds every state, AAPL\'s change included')
})

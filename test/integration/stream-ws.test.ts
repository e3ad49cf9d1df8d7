import t from 'tap'
import { eventually, startTestPulse } from '../helpers/pulse.js'
import { engineUnavailable, ENGINES, item, type ReceivedEvent, until, WsTestClient } from '../helpers/stream-clients.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const MINUTE = 60_000

for (const engine of ENGINES) {
  t.test(`${engine} engine`, { skip: engineUnavailable(engine) }, async (t) => {
    t.test('filters at source: a client gets only the series it subscribed to', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine })
      const aapl1m = await WsTestClient.open(p.url)
      t.teardown(() => aapl1m.close())
      await aapl1m.subscribe(['AAPL'], ['1m'])
      const msft5m = await WsTestClient.open(p.url, '?tickers=MSFT&resolutions=5m')
      t.teardown(() => msft5m.close())
      await until(() => msft5m.state.of('subscribed').length === 1, 5000, 'initial subscription')

      t.equal((await p.post([item('f1', 'AAPL'), item('f2', 'MSFT'), item('f3', 'NVDA')])).status, 202)
      await until(() => aapl1m.state.buckets.size > 0 && msft5m.state.buckets.size > 0, 10_000, 'events')
      await new Promise((resolve) => setTimeout(resolve, 300))
      const series = (c: WsTestClient): string[] => [...new Set(c.state.events.filter((e) => e.bucket !== undefined).map((e) => `${e.ticker as string}#${e.resolution as string}`))]
      t.same(series(aapl1m), ['AAPL#1m'])
      t.same(series(msft5m), ['MSFT#5m'])
      const event = aapl1m.state.of('partial_bucket')[0]
      t.ok(event, 'current bucket arrives as partial_bucket')
      t.equal(event?.progress_pct, event?.bucket?.progress_pct, 'progress_pct equals the bucket\'s own')
      t.type(event?.accepted_at, 'number', 'carries accepted_at')
      t.match(event?.id, /^\d+$/, 'carries an event id')

      aapl1m.send({ op: 'unsubscribe', tickers: ['AAPL'], resolutions: ['1m'] })
      await until(() => aapl1m.state.of('subscribed').length === 2, 5000, 'unsubscribe reply')
      t.equal(aapl1m.state.of('subscribed')[1]?.subscriptions, 0)
      const before = aapl1m.state.buckets.size + aapl1m.state.of('partial_bucket').length
      await p.post([item('f4', 'AAPL')])
      await new Promise((resolve) => setTimeout(resolve, 300))
      t.equal(aapl1m.state.buckets.size + aapl1m.state.of('partial_bucket').length, before, 'nothing after unsubscribe')
    })

    t.test('coalesces a burst of 1,000 updates to one bucket into a few events, the last one final', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine, DEBOUNCE_MS: '500' })
      const client = await WsTestClient.open(p.url)
      t.teardown(() => client.close())
      await client.subscribe(['AAPL'], ['1m'])
      // A past bucket, so the burst cannot straddle a bucket boundary.
      const ts = Math.floor(Date.now() / MINUTE) * MINUTE - 3 * MINUTE + 10_000
      const ids = Array.from({ length: 1000 }, (_, i) => `c${i}`)
      for (let i = 0; i < ids.length; i += 25) {
        const results = await Promise.all(ids.slice(i, i + 25).map(async (id) => await p.post([item(id, 'AAPL', ts, 0.2)])))
        if (!results.every((r) => r.status === 202)) t.fail('a post was refused')
      }
      await until(() => [...client.state.buckets.values()].some((b) => b.count === 1000), 20_000, 'final state')
      await new Promise((resolve) => setTimeout(resolve, 700))
      const updates = client.state.of('bucket_update')
      t.ok(updates.length < 100, `${updates.length} events for 1000 updates`)
      const last = updates.at(-1)
      t.equal(last?.bucket?.count, 1000, 'the last event is the final state')
      const history = await p.get(`/api/v2/timeseries/AAPL?resolution=1m&start=${new Date(ts - MINUTE).toISOString()}`)
      const stored = (history.body.buckets as Array<{ rev: number, count: number }>).find((b) => b.count === 1000)
      t.equal(last?.bucket?.rev, stored?.rev, 'and has the stored rev')
    })

    t.test('heartbeat, ping, snapshot', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine, HEARTBEAT_MS: '150' })
      await p.post([item('h1', 'AAPL'), item('h2', 'AAPL', Date.now() - 5 * MINUTE)])
      const client = await WsTestClient.open(p.url)
      t.teardown(() => client.close())
      await until(() => client.state.of('heartbeat').length >= 2, 5000, 'heartbeats')
      const heartbeat = client.state.of('heartbeat')[0]
      t.equal(heartbeat?.connections, 1)
      t.match(heartbeat?.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)

      client.send({ op: 'ping' })
      await until(() => client.state.of('pong').length === 1, 5000, 'pong')

      await eventually(async () => (await p.get('/api/v2/timeseries/AAPL?resolution=1m')).body.buckets?.length === 1 ? true : undefined, 5000)
      client.send({ op: 'snapshot', id: 'r1', ticker: 'AAPL', resolution: '1m' })
      client.send({ op: 'snapshot', id: 'r2', ticker: 'AAPL', resolution: '1m', start: 'yesterday' })
      client.send({ op: 'snapshot', id: 'r3', ticker: 'ZZZZ', resolution: '1m' })
      await until(() => client.state.of('snapshot').length === 1 && client.state.of('error').length === 2, 5000, 'snapshot replies')
      const snapshot = client.state.of('snapshot')[0] as Record<string, unknown>
      const http = await p.get('/api/v2/timeseries/AAPL?resolution=1m')
      t.equal(snapshot.id, 'r1')
      t.same(snapshot.buckets, http.body.buckets, 'same buckets as the HTTP API')
      t.equal((snapshot.partial_bucket as { count: number }).count, 1)
      t.equal(snapshot.cache_hit, true)
      t.same(client.state.of('error').map((e) => [e.id, e.code]).sort(), [['r2', 'PULSE_ERR_BAD_RANGE'], ['r3', 'PULSE_ERR_UNKNOWN_TICKER']])
    })

    t.test('resume after a forced disconnect mid-burst ends in the state of an undisturbed client', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine, DEBOUNCE_MS: '50' })
      const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: Number(new URL(p.url).port) }, 'http')
      const steady = await WsTestClient.open(p.url)
      t.teardown(() => steady.close())
      await steady.subscribe(['AAPL', 'MSFT'], ['1m', '5m', '1h'])
      let flaky = await WsTestClient.open(proxy.url)
      await flaky.subscribe(['AAPL', 'MSFT'], ['1m', '5m', '1h'])
      const resumed = { state: flaky.state }

      const now = Date.now()
      let n = 0
      const statuses = new Set<number>()
      const burst = async (rounds: number): Promise<void> => {
        for (let round = 0; round < rounds; round++) {
          const batch = Array.from({ length: 10 }, () => {
            n++
            // Current buckets and late data for past ones, on two tickers.
            return item(`r${n}`, n % 3 === 0 ? 'MSFT' : 'AAPL', now - (n % 7) * 40_000, ((n % 11) - 5) / 10)
          })
          statuses.add((await p.post(batch)).status)
        }
      }
      const running = burst(50)
      await until(() => n >= 200 && flaky.state.lastId !== undefined, 15_000, 'mid-burst')
      proxy.drop()
      await flaky.closedPromise
      const positions = { ...flaky.state.positions }
      flaky = await WsTestClient.open(proxy.url)
      t.teardown(() => flaky.close())
      const reply = await flaky.subscribe(['AAPL', 'MSFT'], ['1m', '5m', '1h'], positions)
      t.ok((reply.replayed as number) > 0, 'replays what changed')
      // Series with no event before the cut, or only events sent before the gateway had read
      // the series (position 0: nothing promised), are the ones not recovered.
      t.same(reply.not_recovered, ['AAPL#1m', 'AAPL#5m', 'AAPL#1h', 'MSFT#1m', 'MSFT#5m', 'MSFT#1h'].filter((key) => positions[key] === undefined || positions[key] === '0').sort(), 'every series with a position is recovered')
      await running
      const merged = (): Record<string, string> => {
        for (const event of flaky.state.events.splice(0)) resumed.state.apply(event)
        return resumed.state.digest()
      }
      await until(() => {
        const expected = JSON.stringify(steady.state.digest())
        return [...steady.state.buckets.values()].reduce((sum, b) => sum + (b.resolution === '1h' ? b.count : 0), 0) === n && JSON.stringify(merged()) === expected
      }, 20_000, 'same state on both clients')
      t.same(merged(), steady.state.digest())
      t.same([...statuses], [202], 'every batch accepted')
    })

    // A batch that changes two buckets of one series gives both the same rev; the position of
    // the last one covers that rev, so resuming from it repeats nothing (it used to be rev − 1:
    // both states came again).
    t.test('a client that resumes from its last event is sent no state twice', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine, DEBOUNCE_MS: '10' })
      const first = await WsTestClient.open(p.url)
      await first.subscribe(['AAPL'], ['1m'])
      const minute = Math.floor(Date.now() / MINUTE) * MINUTE
      t.equal((await p.post([item('x1', 'AAPL', minute - MINUTE, 0.2), item('x2', 'AAPL', minute + 1, 0.4)])).status, 202)
      const states = (client: WsTestClient): ReceivedEvent[] => client.state.events.filter((e) => e.bucket !== undefined)
      await until(() => states(first).length >= 2, 10_000, 'both 1m states')
      const [a, b] = states(first).map((e) => e.bucket?.rev)
      t.equal(a, b, 'one fold: both states at one rev')
      const positions = { ...first.state.positions }
      first.close()
      await first.closedPromise

      const again = await WsTestClient.open(p.url)
      t.teardown(() => again.close())
      const reply = await again.subscribe(['AAPL'], ['1m'], positions)
      t.equal(reply.replayed, 0, `nothing is replayed from position ${positions['AAPL#1m']}`)
      t.same(reply.not_recovered, [], 'and the series is recovered')
      await new Promise((resolve) => setTimeout(resolve, 200))
      t.same(states(again), [], 'no state comes twice')
    })

    t.test('graceful shutdown tells clients to reconnect with 1012', async (t) => {
      const p = await startTestPulse(t, { GATEWAY_ENGINE: engine })
      const client = await WsTestClient.open(p.url, '?tickers=AAPL')
      await p.pulse.close()
      t.equal(await client.closedPromise, 1012)
    })
  })
}

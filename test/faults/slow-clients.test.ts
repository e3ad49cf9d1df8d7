import { connect } from 'node:net'
import t from 'tap'
import type { ScoredItem } from '../../shared/timeseries/bucket.js'
import { expectedBuckets } from '../helpers/expected.js'
import { makeItems, postUntilAccepted, rssOf, startFaultCluster, waitForHot } from '../helpers/fault-cluster.js'
import { until, WsTestClient } from '../helpers/stream-clients.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const TICKERS = ['AAPL', 'MSFT', 'NVDA', 'TSLA']
const RESOLUTIONS = ['1m', '5m', '10m', '1h', '3h', '6h', '12h', '24h']

/** An SSE client that reads a few bytes, then pauses for long stretches: slow, not dead. */
function slowSseReader (port: number, query: string): { received: () => number, close: () => void } {
  let received = 0
  const socket = connect(port, '127.0.0.1', () => {
    socket.write(`GET /api/v2/stream?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`)
  })
  socket.setNoDelay(true)
  socket.on('data', (chunk) => {
    received += chunk.length
    socket.pause()
    setTimeout(() => socket.resume(), 250).unref()
  })
  socket.on('error', () => {})
  return { received: () => received, close: () => socket.destroy() }
}

t.test('slow and stalled clients under a burst of 20,000 items: gateway memory bounded, healthy clients exact and unaffected', async (t) => {
  const cluster = await startFaultCluster(t, { tickers: TICKERS, gateways: 1, workers: 2, env: { HEARTBEAT_MS: '1000' } })
  const [gateway] = cluster.gateways
  if (gateway === undefined) throw new Error('cluster did not start')
  const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: gateway.port }, 'http')

  const healthy = await Promise.all(Array.from({ length: 4 }, async () => {
    const client = await WsTestClient.open(gateway.url)
    await client.subscribe(TICKERS, RESOLUTIONS)
    return client
  }))
  const stalled = await Promise.all(Array.from({ length: 4 }, async () => {
    const client = await WsTestClient.open(proxy.url)
    await client.subscribe(TICKERS, RESOLUTIONS)
    return client
  }))
  const slow = Array.from({ length: 4 }, () => slowSseReader(gateway.port, `tickers=${TICKERS.join(',')}&resolutions=${RESOLUTIONS.join(',')}`))
  t.teardown(() => { for (const c of [...healthy, ...stalled]) c.close(); for (const c of slow) c.close() })
  proxy.stall()
  t.comment('4 healthy WS clients, 4 WS clients stalled behind a proxy that stopped reading, 4 SSE clients reading 1 chunk per 250 ms')

  const rssBefore = await rssOf(gateway.pid())
  let rssMax = rssBefore
  const sampler = setInterval(() => { rssOf(gateway.pid()).then((rss) => { rssMax = Math.max(rssMax, rss) }, () => {}) }, 50)
  t.teardown(() => clearInterval(sampler))

  // A burst: 20,000 items with long sources (bigger messages), spread over the last hour.
  const items: ScoredItem[] = makeItems('s', 20_000, TICKERS, Date.now(), 3600).map((item, i) => ({ ...item, source: `src-${String(i % 997).padStart(28, '0')}` }))
  const started = Date.now()
  await Promise.all(Array.from({ length: 4 }, async (_, lane) => {
    for (let i = lane * 1000; i < items.length; i += 4000) await postUntilAccepted(gateway, items.slice(i, i + 1000))
  }))
  t.comment(`burst of ${items.length} items accepted in ${Date.now() - started} ms`)
  const folded = await waitForHot(cluster, items, 60_000)
  t.same(folded.problems.slice(0, 5), [], `all ${folded.buckets} buckets folded exactly`)

  // The target is Redis itself: the newest rev of every folded bucket. Clients converge on
  // it as the last debounced events arrive.
  const refs = [...expectedBuckets(items, Date.now()).values()].map((e) => e.ref)
  const keyOf = (b: { ticker: string, resolution: string, start: number }): string => `${b.ticker}#${b.resolution}@${new Date(b.start).toISOString().replace('.000Z', 'Z')}`
  const newest = new Map((await cluster.hot.get(refs)).map((b) => [keyOf(b), b.rev]))
  const behind = (digest: Record<string, string>): number => [...newest].filter(([key, rev]) => digest[key]?.startsWith(`${rev}:`) !== true).length
  await until(() => healthy.every((c) => behind(c.state.digest()) === 0), 20_000, 'healthy clients to hold the newest state').catch(() => {})
  const reference = healthy[0]?.state.digest() ?? {}
  t.equal(Object.keys(reference).length, folded.buckets, `a healthy client holds every one of the ${folded.buckets} buckets`)
  for (const [i, client] of healthy.entries()) t.same(client.state.digest(), reference, `healthy client ${i + 1} holds the same final state`)
  t.same(behind(reference), 0, 'and that state is the newest rev of every bucket in Redis')

  // A stalled client cannot see its own disconnect (the proxy stopped reading): the
  // gateway's count of open streams, in every heartbeat, tells.
  const connections = (): number => Number(healthy[0]?.state.of('heartbeat').at(-1)?.connections ?? NaN)
  await until(() => connections() <= healthy.length + slow.length, 15_000, 'stalled clients to be cut off').catch(() => {})
  t.ok(connections() >= healthy.length && connections() <= healthy.length + slow.length, `the gateway cut off every stalled client and kept every healthy one (open streams now ${connections()})`)
  // A slow reader whose socket stays full for two heartbeats is cut as well, by design: it
  // reconnects and resumes, rather than making the gateway buffer for it.
  t.comment(`slow SSE readers still connected: ${connections() - healthy.length} of ${slow.length}`)
  t.ok(slow.every((c) => c.received() > 0), `the slow SSE readers kept receiving (${slow.map((c) => c.received()).join(', ')} bytes)`)
  const growth = (rssMax - rssBefore) / 1_048_576
  t.comment(`gateway RSS ${(rssBefore / 1_048_576).toFixed(0)} MB before, ${(rssMax / 1_048_576).toFixed(0)} MB at most during the burst (+${growth.toFixed(0)} MB)`)
  t.ok(growth < 150, 'gateway memory stayed bounded (< 150 MB growth for 20,000 items, 8 slow or stalled clients)')
  const health = await fetch(`${gateway.url}/healthz`)
  t.equal(health.status, 200, 'the gateway is healthy afterwards')
})

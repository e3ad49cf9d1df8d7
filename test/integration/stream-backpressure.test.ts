import t from 'tap'
import { bucketStart, RESOLUTIONS } from '../../shared/timeseries/resolutions.js'
import { startTestPulse } from '../helpers/pulse.js'
import { engineUnavailable, ENGINES, item, until, WsTestClient } from '../helpers/stream-clients.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

// A long file: on a loaded machine it outlasts tap's default per-file timeout.
t.setTimeout(300_000)

/*
 * Backpressure on each gateway engine: a WebSocket client that stops reading while a burst
 * is folded costs the gateway bounded memory, is disconnected, and never delays a healthy
 * client. The other connection limits are in stream-limits.test.ts.
 */

const MINUTE = 60_000

for (const engine of ENGINES) {
  t.test(`${engine} engine`, { skip: engineUnavailable(engine) }, async (t) => {
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

import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { declaredMetrics, metricValue, parsePrometheus, type Sample } from '../helpers/prometheus.js'
import { eventually, startTestPulse, type TestPulse } from '../helpers/pulse.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { sharedDynalite, uniqueEnv } from '../helpers/shared-services.js'
import { item, SseTestClient, until, WsTestClient } from '../helpers/stream-clients.js'

/** Every metric the README lists; each must be declared by every gateway. */
const LISTED = [
  'pulse_info',
  'pulse_items_accepted_total',
  'pulse_items_rejected_total',
  'pulse_queue_jobs',
  'pulse_fold_duration_seconds',
  'pulse_folded_items_total',
  'pulse_event_latency_seconds',
  'pulse_events_sent_total',
  'pulse_events_coalesced_total',
  'pulse_channel_events_coalesced_total',
  'pulse_connections',
  'pulse_subscriptions',
  'pulse_cache_hits_total',
  'pulse_cache_misses_total',
  'pulse_cache_loads_total',
  'pulse_dynamodb_items_written_total',
  'pulse_dynamodb_write_calls_total',
  'pulse_dynamodb_retries_total',
  'pulse_dynamodb_failed_puts_total',
  'pulse_dynamodb_superseded_writes_total',
  'pulse_dynamodb_rejected_writes_total',
  'pulse_write_behind_parked_total',
  'pulse_write_behind_flushes_total',
  'pulse_write_behind_failed_flushes_total',
  'pulse_write_behind_stalled_calls_total',
  'pulse_write_behind_backlog',
  'pulse_redis_reconnects_total',
  'pulse_dedupe_entries',
  'process_cpu_user_seconds_total',
  'process_resident_memory_bytes',
  'nodejs_eventloop_lag_seconds',
  'nodejs_heap_size_used_bytes'
]

async function scrape (url: string, token?: string): Promise<{ status: number, text: string, samples: Sample[] }> {
  const res = await fetch(`${url}/metrics`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } })
  const text = await res.text()
  return { status: res.status, text, samples: res.status === 200 ? parsePrometheus(text) : [] }
}

/** Ingests, streams over WS and SSE, reads history, and lets a flush run: every metric moves. */
async function shortRun (t: Test, p: TestPulse): Promise<void> {
  const ws = await WsTestClient.open(p.url)
  t.teardown(() => ws.close())
  await ws.subscribe(['AAPL'], ['1m', '5m'])
  const sse = new SseTestClient(`${p.url}/api/v2/stream?tickers=AAPL&resolutions=1m`)
  t.teardown(() => sse.close())
  await until(() => sse.opens > 0, 10_000, 'SSE open')
  const now = Date.now()
  for (let i = 0; i < 10; i++) t.equal((await p.post([item(`m${i}`, 'AAPL', now, i / 20), item(`n${i}`, 'MSFT', now)])).status, 202)
  t.equal((await p.post([{ id: 'bad', ticker: 'AAPL' }])).status, 400)
  t.equal((await p.post([item('x')], { authorization: 'Bearer wrong-key-wrong-key' })).status, 401)
  await until(() => ws.state.of('partial_bucket').length > 0 && sse.state.of('partial_bucket').length > 0, 10_000, 'events on both transports')
  for (let i = 0; i < 2; i++) t.equal((await p.get('/api/v2/timeseries/MSFT?resolution=1h')).status, 200)
}

function checkRun (t: Test, text: string, samples: Sample[]): void {
  const declared = declaredMetrics(text)
  for (const name of LISTED) t.ok(declared.has(name), `${name} is exposed`)
  const v = (name: string, labels: Record<string, string> = {}): number => metricValue(samples, name, labels) ?? Number.NaN
  t.equal(v('pulse_items_accepted_total'), 20, 'accepted items')
  t.equal(v('pulse_items_rejected_total', { code: 'PULSE_ERR_VALIDATION' }), 1, 'rejected by validation')
  t.equal(v('pulse_items_rejected_total', { code: 'PULSE_ERR_UNAUTHORIZED' }), 1, 'rejected by auth')
  t.ok(v('pulse_queue_jobs', { state: 'waiting' }) >= 0 && v('pulse_queue_jobs', { state: 'failed' }) === 0, 'queue gauges')
  t.ok(v('pulse_fold_duration_seconds_count') >= 1, 'folds timed')
  t.ok(v('pulse_fold_duration_seconds_sum') < 10, 'fold time is sane')
  t.ok(v('pulse_folded_items_total') >= 20, 'folded items (a retried batch counts again)')
  for (const transport of ['ws', 'sse']) {
    t.ok(v('pulse_events_sent_total', { transport }) >= 1, `${transport} events sent`)
    const count = v('pulse_event_latency_seconds_count', { transport })
    t.ok(count >= 1, `${transport} latency observed`)
    t.ok(v('pulse_event_latency_seconds_sum', { transport }) / count < 5, `${transport} mean latency is sane`)
    t.equal(v('pulse_connections', { transport }), 1, `${transport} connections`)
  }
  t.equal(v('pulse_subscriptions', { transport: 'ws' }), 2, 'ws subscriptions')
  t.equal(v('pulse_subscriptions', { transport: 'sse' }), 1, 'sse subscriptions')
  t.ok(v('pulse_events_coalesced_total', { transport: 'ws' }) >= 0, 'coalesced counter (backpressure)')
  t.ok(v('pulse_channel_events_coalesced_total') >= 0, 'coalesced counter (per-bucket rule)')
  t.ok(v('pulse_cache_hits_total', { tier: 'l1' }) >= 1, 'l1 hits')
  t.ok(v('pulse_cache_misses_total', { tier: 'l1' }) >= 1, 'l1 misses')
  t.ok(v('pulse_cache_loads_total') >= 1, 'series loads')
  t.ok(v('pulse_dynamodb_items_written_total') > 0, 'archive writes')
  t.ok(v('pulse_dynamodb_write_calls_total') > 0, 'archive write calls')
  t.equal(v('pulse_dynamodb_failed_puts_total'), 0, 'no failed puts')
  t.ok(v('pulse_write_behind_flushes_total') > 0, 'flushes')
  t.equal(v('pulse_write_behind_backlog'), 0, 'nothing left dirty')
  t.ok(v('pulse_dedupe_entries') > 0, 'dedupe fingerprints held')
  t.ok(v('process_resident_memory_bytes') > 0, 'process metrics')
}

t.test('embedded: /metrics exposes every listed metric with sane values after a short run', async (t) => {
  const p = await startTestPulse(t, { FLUSH_INTERVAL_MS: '100', DEBOUNCE_MS: '300' })
  await shortRun(t, p)
  const { status, text, samples } = await eventually(async () => {
    const s = await scrape(p.url)
    return (metricValue(s.samples, 'pulse_dynamodb_items_written_total') ?? 0) > 0 && metricValue(s.samples, 'pulse_write_behind_backlog') === 0 ? s : undefined
  }, 10_000, 'a flush')
  t.equal(status, 200)
  checkRun(t, text, samples)
  t.match(text, /pulse_info\{role="all",mode="embedded"\} 1/)
})

t.test('a burst to one bucket is coalesced once in its channel under a slow debounce', async (t) => {
  const p = await startTestPulse(t, { DEBOUNCE_MS: '1000' })
  const ws = await WsTestClient.open(p.url)
  t.teardown(() => ws.close())
  await ws.subscribe(['AAPL'], ['1m'])
  const now = Date.now()
  for (let i = 0; i < 8; i++) {
    t.equal((await p.post([item(`c${i}`, 'AAPL', now)])).status, 202)
    await sleep(30)
  }
  await eventually(async () => {
    const s = await scrape(p.url)
    return (metricValue(s.samples, 'pulse_channel_events_coalesced_total') ?? 0) > 0 ? true : undefined
  }, 10_000, 'coalesced events')
})

t.test('METRICS_TOKEN: /metrics needs the bearer token', async (t) => {
  const p = await startTestPulse(t, { METRICS_TOKEN: 'scrape-secret' })
  const missing = await fetch(`${p.url}/metrics`)
  t.equal(missing.status, 401)
  t.equal(((await missing.json()) as { error: { code: string } }).error.code, 'PULSE_ERR_UNAUTHORIZED')
  t.equal((await scrape(p.url, 'wrong')).status, 401)
  const ok = await scrape(p.url, 'scrape-secret')
  t.equal(ok.status, 200)
  t.ok(declaredMetrics(ok.text).has('pulse_items_accepted_total'))
})

t.test('cluster: gateway and worker both expose metrics; Redis reconnects are counted', async (t) => {
  // Its own Redis: the test restarts it.
  const redis = await startRedisServer(t)
  const env = { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: (await sharedDynalite()).endpoint, PULSE_ENV: uniqueEnv('m'), FLUSH_INTERVAL_MS: '100', DEBOUNCE_MS: '300' }
  const gateway = await startTestPulse(t, { ...env, ROLE: 'gateway' }, { drainMs: 0 })
  const worker = await startTestPulse(t, { ...env, ROLE: 'worker' })
  t.equal((await worker.get('/healthz')).status, 200, 'worker answers /healthz')
  t.equal((await worker.get('/readyz')).status, 200, 'worker is ready')
  await shortRun(t, gateway)
  const fromGateway = await scrape(gateway.url)
  const fromWorker = await eventually(async () => {
    const s = await scrape(worker.url)
    // The backlog gauge reads 0 before the first flush too: wait for writes as well.
    return (metricValue(s.samples, 'pulse_folded_items_total') ?? 0) >= 20 && (metricValue(s.samples, 'pulse_dynamodb_items_written_total') ?? 0) > 0 && metricValue(s.samples, 'pulse_write_behind_backlog') === 0 ? s : undefined
  }, 20_000, 'worker folds and flushes')
  // A cluster splits the metrics by role; together they cover the list.
  checkRun(t, fromGateway.text + fromWorker.text, [...fromGateway.samples, ...fromWorker.samples])
  t.match(fromWorker.text, /pulse_info\{role="worker",mode="cluster"\} 1/)
  t.equal(metricValue(fromGateway.samples, 'pulse_redis_reconnects_total'), 0, 'no reconnects yet')

  await redis.restart()
  const reconnected = await eventually(async () => {
    const s = await scrape(gateway.url)
    const n = metricValue(s.samples, 'pulse_redis_reconnects_total') ?? 0
    return n > 0 ? n : undefined
  }, 10_000, 'reconnects counted')
  t.ok(reconnected > 0, 'gateway counted Redis reconnects')
})

t.test('the Grafana dashboard queries only metrics Pulse exposes', async (t) => {
  const dashboard = await readFile(new URL('../../deploy/grafana/pulse-dashboard.json', import.meta.url), 'utf8')
  const used = new Set([...dashboard.matchAll(/\b(pulse_[a-z_]+?)(?:_bucket|_sum|_count)?\b(?=[{[(\s)])/g)].map((m) => m[1] as string))
  t.ok(used.size > 10, `${used.size} Pulse metrics charted`)
  for (const name of used) t.ok(LISTED.includes(name), `${name} is a listed metric`)
})

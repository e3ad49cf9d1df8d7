import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import t from 'tap'
import { encodeBusMessage } from '../../shared/adapters/redis/bus-message.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import { bucketStart } from '../../shared/timeseries/resolutions.js'
import { startDynaliteProcess, startPulseProcess } from '../helpers/processes.js'
import { metricValue, parsePrometheus } from '../helpers/prometheus.js'
import { eventually, startTestPulse, TEST_INGEST_KEY } from '../helpers/pulse.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { WsWatcher } from '../helpers/ws-watcher.js'

t.test('malformed bus messages are dropped and counted; the gateway process stays up and keeps streaming', async (t) => {
  const redis = await startRedisServer(t)
  const dynalite = await startDynaliteProcess(t)
  const pulseEnv = `v${randomBytes(3).toString('hex')}`
  const env = { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: pulseEnv, TICKERS: 'AAPL,MSFT' }
  const gateway = await startPulseProcess(t, { role: 'gateway', env: { ...env, DRAIN_MS: '0' } })
  await startTestPulse(t, { ...env, ROLE: 'worker' })
  const publisher = new Redis(redis.url)
  t.teardown(() => publisher.disconnect())
  const hot = new RedisHotState({ connection: redis.url, env: pulseEnv, dedupeWindowMs: 86_400_000 })
  t.teardown(() => hot.close())
  const post = async (items: unknown[]): Promise<number> => (await fetch(`${gateway.url}/api/v2/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_INGEST_KEY}` },
    body: JSON.stringify(items)
  })).status

  const watcher = new WsWatcher()
  t.teardown(() => watcher.close())
  await watcher.connect(gateway.url, ['AAPL'], ['1m'])
  const now = Date.now()
  const start = bucketStart(now, '1m')
  const key = WsWatcher.key('AAPL', '1m', new Date(start).toISOString().replace('.000Z', 'Z'))
  const item = (id: string): Record<string, unknown> => ({ id, ticker: 'AAPL', timestamp: new Date(now).toISOString(), score: 0.5, source: 'tiingo' })
  t.equal(await post([item('one')]), 202)
  await eventually(() => watcher.latest.get(key)?.count === 1 ? true : undefined, 15_000, 'the first item to stream')

  // Newer-looking states of the very bucket the client watches, each broken in one way.
  const [real] = await hot.get([{ ticker: 'AAPL', resolution: '1m', start }])
  if (real === undefined) throw new Error('bucket not folded')
  const { sources: _sources, ...withoutSources } = real
  const { label_counts: _labels, ...withoutLabels } = real
  // Clients keep the newest state of a bucket, so the highest rev is the one a gateway
  // would try to render: the bucket without `sources`.
  const bad: unknown[] = [
    { kind: 'change', bucket: { ...real, count: 'many', rev: real.rev + 100 } },
    { kind: 'change', bucket: { ...real, ticker: 'MSFT', rev: real.rev + 101 } },
    { kind: 'change', bucket: { ...withoutLabels, rev: real.rev + 102 } },
    { kind: 'change', bucket: { ...withoutSources, rev: real.rev + 103 } },
    { kind: 'final' },
    'not json {',
    // The wire format (bus-message.ts) broken after encoding: a count that is no number, a bucket of another series.
    JSON.stringify((JSON.parse(encodeBusMessage({ kind: 'change', bucket: { ...real, rev: real.rev + 104 } })) as string[]).map((v, i) => i === 9 ? 'many' : v)),
    encodeBusMessage({ kind: 'change', bucket: { ...real, ticker: 'MSFT', rev: real.rev + 105 } })
  ]
  const channel = `pulse:${pulseEnv}:ch:AAPL#1m`
  for (const message of bad) {
    t.equal(await publisher.publish(channel, typeof message === 'string' ? message : JSON.stringify(message)), 1, 'the gateway receives it')
  }

  t.equal(await post([item('two')]), 202)
  await eventually(() => watcher.latest.get(key)?.count === 2 ? true : undefined, 15_000, 'the next good event to stream').catch(() => {})
  t.equal(watcher.latest.get(key)?.count, 2, 'clients keep receiving good events')
  t.equal(watcher.latest.get(key)?.rev, real.rev + 1, 'no dropped state reached the client')
  t.same(watcher.latest.get(key)?.sources, ['tiingo'])
  t.equal((await fetch(`${gateway.url}/healthz`)).status, 200, 'the gateway process is up')
  const samples = parsePrometheus(await (await fetch(`${gateway.url}/metrics`)).text())
  t.equal(metricValue(samples, 'pulse_bus_messages_dropped_total'), bad.length, 'every malformed message was counted')
  t.match(gateway.output(), /dropped an invalid bus message/, 'and logged')
})

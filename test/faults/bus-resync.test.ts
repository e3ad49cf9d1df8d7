import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import t from 'tap'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import { toWireBucket } from '../../shared/timeseries/bucket.js'
import { bucketStart } from '../../shared/timeseries/resolutions.js'
import { startDynaliteProcess } from '../helpers/processes.js'
import { eventually, startTestPulse } from '../helpers/pulse.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { WsWatcher } from '../helpers/ws-watcher.js'

const WATCHED = ['1m', '1h'] as const

t.test('bus events published while a gateway\'s subscriber reconnects reach its clients by resync, exact, with no further item', async (t) => {
  const redis = await startRedisServer(t)
  const dynalite = await startDynaliteProcess(t)
  // The gateway reaches Redis through a proxy, so the test can hold its reconnection.
  const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: redis.port })
  const pulseEnv = `b${randomBytes(3).toString('hex')}`
  const env = { DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: pulseEnv, TICKERS: 'AAPL' }
  const gateway = await startTestPulse(t, { ...env, REDIS_URL: proxy.url, ROLE: 'gateway' }, { drainMs: 0 })
  await startTestPulse(t, { ...env, REDIS_URL: redis.url, ROLE: 'worker' })
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const hot = new RedisHotState({ connection: redis.url, env: pulseEnv, dedupeWindowMs: 86_400_000 })
  t.teardown(() => hot.close())

  const watcher = new WsWatcher()
  t.teardown(() => watcher.close())
  await watcher.connect(gateway.url, ['AAPL'], [...WATCHED])
  const channel = `pulse:${pulseEnv}:ch:AAPL#1m`
  const subscribers = async (): Promise<number> => Number((await admin.pubsub('NUMSUB', channel) as [string, number])[1])
  t.equal(await subscribers(), 1, 'the gateway subscribed the channel')

  const now = Date.now()
  const item = (id: string, score: number): Record<string, unknown> => ({ id, ticker: 'AAPL', timestamp: new Date(now).toISOString(), score, source: 'tiingo' })
  t.equal((await gateway.post([item('first', 0.5)])).status, 202)
  const key = (resolution: string): string => WsWatcher.key('AAPL', resolution, new Date(bucketStart(now, resolution as '1m')).toISOString().replace('.000Z', 'Z'))
  await eventually(() => watcher.latest.get(key('1m'))?.count === 1 ? true : undefined, 15_000, 'the first item to stream')

  // The fault: the subscriber connection is killed and cannot come back for a while.
  proxy.refuse()
  await admin.client('KILL', 'TYPE', 'pubsub')
  await eventually(async () => await subscribers() === 0 ? true : undefined, 5000, 'the gateway to lose its subscription')
  t.equal((await gateway.post([item('second', -0.25), item('third', 0.75)])).status, 202, 'accepted while the bus is down (the queue connection stays up)')
  const refs = WATCHED.map((resolution) => ({ ticker: 'AAPL', resolution, start: bucketStart(now, resolution) }))
  await eventually(async () => (await hot.get(refs)).every((b) => b.count === 3) ? true : undefined, 15_000, 'the worker to fold and publish both items')
  t.equal(await subscribers(), 0, 'the worker published while the gateway was not subscribed: those messages are lost')
  t.equal(watcher.latest.get(key('1m'))?.count, 1, 'the client has not seen the change')

  proxy.accept()
  const expected = await hot.get(refs)
  await eventually(() => expected.every((b) => watcher.latest.get(key(b.resolution))?.rev === b.rev) ? true : undefined, 20_000, 'the client to reach the hot-state revision').catch(() => {})
  for (const bucket of expected) {
    const wire = toWireBucket(bucket, Date.now())
    const held = watcher.latest.get(key(bucket.resolution))
    t.same(held === undefined ? undefined : { ...held, is_partial: wire.is_partial, progress_pct: wire.progress_pct },
      wire, `${bucket.resolution}: the client holds exactly the hot-state bucket (rev ${bucket.rev})`)
  }
  t.equal(await subscribers(), 1, 'the gateway is subscribed again')
  t.same(watcher.errors, [])
})

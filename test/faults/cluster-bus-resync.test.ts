import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import t from 'tap'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import { bucketStart } from '../../shared/timeseries/resolutions.js'
import { startDynaliteProcess } from '../helpers/processes.js'
import { eventually, startTestPulse } from '../helpers/pulse.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'
import { WsWatcher } from '../helpers/ws-watcher.js'

t.test('Redis Cluster: a fold published while a master\'s sharded subscriber reconnects reaches the client by resync, with nothing posted after', async (t) => {
  const cluster = await startRedisCluster(t)
  const dynalite = await startDynaliteProcess(t)
  const pulseEnv = `r${randomBytes(3).toString('hex')}`
  const env = { REDIS_URL: cluster.url, REDIS_CLUSTER: '1', DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: pulseEnv, TICKERS: 'AAPL' }
  const gateway = await startTestPulse(t, { ...env, ROLE: 'gateway' }, { drainMs: 0 })
  await startTestPulse(t, { ...env, ROLE: 'worker' })
  const master = new Redis((await cluster.nodeOf('{AAPL}')).url)
  t.teardown(() => master.disconnect())
  const hot = new RedisHotState({ connection: cluster.url, cluster: {}, env: pulseEnv, dedupeWindowMs: 86_400_000 })
  t.teardown(() => hot.close())

  const watcher = new WsWatcher()
  t.teardown(() => watcher.close())
  await watcher.connect(gateway.url, ['AAPL'], ['1m'])
  const now = Date.now()
  const item = (id: string, score: number): Record<string, unknown> => ({ id, ticker: 'AAPL', timestamp: new Date(now).toISOString(), score, source: 'tiingo' })
  const key = WsWatcher.key('AAPL', '1m', new Date(bucketStart(now, '1m')).toISOString().replace('.000Z', 'Z'))
  t.equal((await gateway.post([item('first', 0.5)])).status, 202)
  await eventually(() => watcher.latest.get(key)?.count === 1 ? true : undefined, 15_000, 'the first item to stream')

  // The fault: the master holding AAPL's channel drops its pub/sub clients and then stalls,
  // so the gateway's new sharded subscriber, its SSUBSCRIBE and the worker's fold and
  // publish of one more item all meet the same paused shard.
  const faulted = Promise.all([master.client('KILL', 'TYPE', 'pubsub'), master.call('DEBUG', 'SLEEP', '0.3')])
  t.equal((await gateway.post([item('second', -0.25)])).status, 202)
  await faulted

  const ref = { ticker: 'AAPL', resolution: '1m' as const, start: bucketStart(now, '1m') }
  await eventually(async () => (await hot.get([ref]))[0]?.count === 2 ? true : undefined, 15_000, 'the worker to fold the second item')
  const [expected] = await hot.get([ref])
  await eventually(() => watcher.latest.get(key)?.rev === expected?.rev ? true : undefined, 20_000, 'the client to reach the hot-state revision').catch(() => {})
  t.equal(watcher.latest.get(key)?.count, 2, 'the client holds the folded item')
  t.equal(watcher.latest.get(key)?.rev, expected?.rev, 'at the hot state\'s revision')
  t.same(watcher.errors, [])
})

import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { createDynamoClients } from '../../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../../shared/adapters/dynamo/dynamo-archive.js'
import { tableName } from '../../shared/adapters/dynamo/table.js'
import { ingestShardOf, RedisHotState } from '../../shared/adapters/redis/index.js'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { toIsoSecond } from '../../shared/timeseries/resolutions.js'
import { differences, expectedBuckets } from '../helpers/expected.js'
import { eventually, TEST_INGEST_KEY } from '../helpers/pulse.js'
import { type ManagedProcess, startDynaliteProcess, startPulseProcess } from '../helpers/processes.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { WsWatcher } from '../helpers/ws-watcher.js'

const WATCHED = ['1m', '1h', '24h']

// Two full runs of real processes (single node, then Redis Cluster) on a shared machine.
t.setTimeout(600_000)

/** Items over the last two hours (so many are late for their 1m–1h buckets), 10% exact resends. */
function makeItems (count: number, now: number, tickers: readonly string[]): ScoredItem[] {
  const items: ScoredItem[] = []
  for (let i = 0; i < count; i++) {
    const score = Math.round(Math.sin(i * 7.3) * 1e6) / 1e6
    items.push({ id: `c${i}`, ticker: tickers[i % tickers.length] as string, ts: now - Math.floor(((i * 7919) % 7200) * 1000), score, label: labelFor(score), source: ['tiingo', 'finnhub', 'newsapi'][i % 3] as string })
  }
  const resends = items.filter((_, i) => i % 10 === 0).map((item) => ({ ...item }))
  const all = [...items, ...resends]
  for (let i = all.length - 1; i > 0; i--) {
    const j = (i * 2654435761) % (i + 1)
    ;[all[i], all[j]] = [all[j] as ScoredItem, all[i] as ScoredItem]
  }
  return all
}

function wire (item: ScoredItem): Record<string, unknown> {
  return { id: item.id, ticker: item.ticker, timestamp: new Date(item.ts).toISOString(), score: item.score, source: item.source }
}

async function post (gateway: ManagedProcess, items: ScoredItem[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${gateway.url}/api/v2/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_INGEST_KEY}` },
      body: JSON.stringify(items.map(wire))
    }).catch(() => undefined)
    if (res?.status === 202) return
    if (attempt > 20) throw new Error(`post failed: ${res?.status ?? 'no answer'} ${await res?.text()}`)
    await sleep(200)
  }
}

/** The Redis a run uses, and the fault it goes through mid-stream. */
interface Setup {
  tickers: string[]
  env: Record<string, string>
  /** Connection of the checking hot state. */
  redis: { url: string, cluster?: Record<string, never> }
  /** Runs a third of the way through the stream; returns what it did. */
  fault: (processes: { workerA: ManagedProcess }) => Promise<string>
  /** Runs two thirds of the way through. */
  recover: (processes: { workerA: ManagedProcess }) => Promise<string>
}

async function run (t: Test, setup: Setup): Promise<void> {
  const TICKERS = setup.tickers
  const dynalite = await startDynaliteProcess(t)
  const env = { ...setup.env, DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: `c${randomBytes(3).toString('hex')}`, TICKERS: TICKERS.join(','), FLUSH_INTERVAL_MS: '500', QUEUE_LOCK_MS: '5000', FLUSH_LEASE_MS: '4000' }
  // One after another: four processes starting at once on a loaded machine can outlast the start timeout.
  const gatewayA = await startPulseProcess(t, { role: 'gateway', env })
  const gatewayB = await startPulseProcess(t, { role: 'gateway', env })
  const workerA = await startPulseProcess(t, { role: 'worker', env })
  const workerB = await startPulseProcess(t, { role: 'worker', env })

  const watchers = [new WsWatcher(), new WsWatcher()]
  await (watchers[0] as WsWatcher).connect(gatewayA.url, TICKERS, WATCHED)
  await (watchers[1] as WsWatcher).connect(gatewayB.url, TICKERS, WATCHED)
  t.teardown(() => { for (const w of watchers) w.close() })

  const now = Date.now()
  const items = makeItems(4000, now, TICKERS)
  const batches: ScoredItem[][] = []
  for (let i = 0; i < items.length; i += 100) batches.push(items.slice(i, i + 100))
  for (let i = 0; i < batches.length; i++) {
    if (i === Math.floor(batches.length / 3)) t.comment(await setup.fault({ workerA }))
    if (i === Math.floor((2 * batches.length) / 3)) t.comment(await setup.recover({ workerA }))
    await post(i % 2 === 0 ? gatewayA : gatewayB, batches[i] as ScoredItem[])
  }
  t.comment(`posted ${items.length} items (${batches.length} batches) through two gateways`)

  const expected = expectedBuckets(items, Date.now())
  const hot = new RedisHotState({ connection: setup.redis.url, cluster: setup.redis.cluster, env: env.PULSE_ENV, dedupeWindowMs: 86_400_000 })
  t.teardown(async () => await hot.close())
  const refs = [...expected.values()].map((e) => e.ref)

  let hotProblems: string[] = []
  await eventually(async () => {
    const buckets = await hot.get(refs)
    const byKey = new Map(buckets.map((b) => [`${b.ticker}#${b.resolution}@${b.start}`, b]))
    hotProblems = [...expected].flatMap(([key, e]) => differences(byKey.get(key), e.aggregate).map((p) => `${key}: ${p}`))
    return hotProblems.length === 0 ? true : undefined
  }, 90_000, 'Redis buckets to equal the domain fold').catch(() => {})
  t.same(hotProblems.slice(0, 20), [], `all ${expected.size} buckets in Redis equal the domain fold`)
  if (hotProblems.length > 0) t.comment(workerA.output().slice(-3000), workerB.output().slice(-3000))

  // A flush cut short by the fault (a killed worker, a master that went away) holds the
  // buckets it took for its lease (FLUSH_LEASE_MS, 4 s here, 60 s by default) before another
  // flush takes them: wait beyond it.
  await eventually(async () => (await hot.dirtyCount()) === 0 ? true : undefined, 90_000, 'write-behind to drain')
  const { doc, client } = createDynamoClients({ region: 'us-east-1', endpoint: dynalite.endpoint })
  const archive = new DynamoArchive({ client: doc, tableName: tableName(env.PULSE_ENV) })
  t.teardown(() => client.destroy())
  const stored = await archive.get(refs, Date.now())
  const storedByKey = new Map(stored.map((b) => [`${b.ticker}#${b.resolution}@${b.start}`, b]))
  const archiveProblems = [...expected].flatMap(([key, e]) => differences(storedByKey.get(key), e.aggregate).map((p) => `${key}: ${p}`))
  t.same(archiveProblems, [], `all ${expected.size} buckets in DynamoDB equal the domain fold`)

  for (const [i, watcher] of watchers.entries()) {
    const problems = await eventually(async () => {
      const found: string[] = []
      for (const [key, e] of expected) {
        if (!WATCHED.includes(e.ref.resolution)) continue
        const streamed = watcher.latest.get(WsWatcher.key(e.ref.ticker, e.ref.resolution, toIsoSecond(e.ref.start)))
        found.push(...differences(streamed, e.aggregate).map((p) => `${key}: ${p}`))
      }
      return found.length === 0 ? found : undefined
    }, 20_000, `client on gateway ${i} to hold the final state`).catch((err: Error) => [err.message])
    t.same(problems, [], `the WebSocket client on gateway ${i === 0 ? 'A' : 'B'} holds the final state of every watched bucket`)
  }

  for (const gateway of [gatewayA, gatewayB]) {
    const res = await fetch(`${gateway.url}/api/v2/timeseries/MSFT?resolution=1h`)
    const body = await res.json() as { buckets: Array<{ timestamp: string, count: number }>, partial_bucket: { timestamp: string, count: number } | null }
    const served = [...body.buckets, ...(body.partial_bucket === null ? [] : [body.partial_bucket])]
    const wanted = [...expected.values()].filter((e) => e.ref.ticker === 'MSFT' && e.ref.resolution === '1h')
    t.same(served.map((b) => b.count).sort(), wanted.map((e) => e.aggregate.count).sort(), `history on ${gateway.url} matches`)
  }
  await workerB.stop()
}

t.test('cluster: 2 gateways + 2 workers fold shuffled, duplicated, late items exactly — also across a worker SIGKILL', async (t) => {
  const redis = await startRedisServer(t)
  await run(t, {
    tickers: ['AAPL', 'MSFT', 'NVDA'],
    env: { REDIS_URL: redis.url },
    redis: { url: redis.url },
    fault: async ({ workerA }) => {
      await workerA.kill('SIGKILL')
      return 'worker A killed with SIGKILL mid-stream'
    },
    recover: async ({ workerA }) => {
      await workerA.start()
      return 'worker A restarted'
    }
  })
})

t.test('Redis Cluster: 2 gateways + 2 workers, 4 ingest shards, tickers on every master — exact across a master restart mid-stream', async (t) => {
  const cluster = await startRedisCluster(t)
  // Two tickers on each of the three masters, over all four ingest shards.
  const tickers = ['AAPL', 'MSFT', 'GOOGL', 'TSLA', 'AMZN', 'JPM']
  const masters = new Set(await Promise.all(tickers.map(async (ticker) => (await cluster.nodeOf(`{${ticker}}`)).port)))
  t.equal(masters.size, cluster.nodes.length, 'the tickers live on every master')
  t.equal(new Set(tickers.map((ticker) => ingestShardOf(ticker, 4))).size, 4, 'and go through every shard')
  const aaplMaster = (await cluster.nodeOf('{AAPL}')).port
  const restarted = cluster.nodes.findIndex((n) => n.port === aaplMaster)
  let restarting: Promise<void> | undefined
  await run(t, {
    tickers,
    env: { REDIS_URL: cluster.url, REDIS_CLUSTER: '1', INGEST_SHARDS: '4' },
    redis: { url: cluster.url, cluster: {} },
    fault: async () => {
      // Producers keep posting while the master is down and coming back.
      restarting = cluster.restartMaster(restarted, { kill: true, downMs: 1000 })
      return `master ${aaplMaster} (holding AAPL's keys) killed with SIGKILL; down for 1 s, then restarted from its AOF`
    },
    recover: async () => {
      await restarting
      return 'the cluster is whole again'
    }
  })
})

import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { Aggregate, ScoredItem } from '../../shared/timeseries/bucket.js'
import { bucketId } from '../../shared/timeseries/keys.js'
import { termOf } from '../../shared/timeseries/revision.js'
import { differences, expectedBuckets } from '../helpers/expected.js'
import { assertConverged, postAll } from '../helpers/failover-convergence.js'
import { type FaultCluster, compare, makeItems, startFaultCluster, waitForHot } from '../helpers/fault-cluster.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { until, WsTestClient } from '../helpers/stream-clients.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const TICKERS = ['AAPL', 'MSFT']
const WATCHED = ['1m', '5m', '1h']

/** A number from `INFO replication`. */
async function replicationOffset (redis: Redis, field: string): Promise<number> {
  const info = await redis.info('replication')
  return Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1] ?? Number.NaN)
}

async function waitConverged (t: Test, what: string, cluster: FaultCluster, clients: WsTestClient[], extra: WsTestClient[], accepted: readonly ScoredItem[]): Promise<void> {
  await assertConverged(t, what, cluster, [...clients, ...extra], accepted, { tickers: TICKERS, resolutions: WATCHED })
}

t.test('a replica that lagged is promoted behind the same address: archive, history and clients converge to one exact fold', async (t) => {
  // The primary, a relay that carries its replication stream to the replica (and can stop
  // carrying it), the replica, and the address Pulse knows: a proxy that follows the primary.
  const primary = await startRedisServer(t)
  const relay = await startTcpProxy(t, { host: '127.0.0.1', port: primary.port })
  const replica = await startRedisServer(t, { replicaOf: relay.port })
  const front = await startTcpProxy(t, { host: '127.0.0.1', port: primary.port })
  const cluster = await startFaultCluster(t, { tickers: TICKERS, gateways: 2, workers: 1, redis: primary, redisUrl: front.url })
  const clients = await Promise.all(cluster.gateways.map(async (gateway) => await WsTestClient.open(gateway.url)))
  for (const client of clients) {
    t.teardown(() => client.close())
    await client.subscribe(TICKERS, WATCHED)
  }
  const primaryAdmin = new Redis(primary.url, { lazyConnect: true, maxRetriesPerRequest: 0 })
  const replicaAdmin = new Redis(replica.url)
  t.teardown(() => { primaryAdmin.disconnect(); replicaAdmin.disconnect() })
  await primaryAdmin.connect()

  const now = Date.now()
  const accepted: ScoredItem[] = []
  // 1. In step: everything folded, written behind and replicated.
  await postAll(cluster.gateways, makeItems('a', 600, TICKERS, now, 1800), accepted)
  t.same((await waitForHot(cluster, accepted, 30_000)).problems.slice(0, 5), [], 'phase 1 folded')
  await waitConverged(t, 'phase 1', cluster, clients, [], accepted)
  // A client that will be away during the failover: it reads every series first (positions).
  const traveller = await WsTestClient.open(cluster.gateways[0]?.url as string)
  t.teardown(() => traveller.close())
  await traveller.subscribe(TICKERS, WATCHED)
  const start = new Date(now - 7_200_000).toISOString()
  for (const ticker of TICKERS) for (const resolution of WATCHED) traveller.send({ op: 'snapshot', id: `${ticker}#${resolution}`, ticker, resolution, start })
  await until(() => traveller.state.of('snapshot').length === TICKERS.length * WATCHED.length, 10_000, 'the traveller\'s snapshots')
  const inStep = Date.now() + 10_000
  while (await replicationOffset(replicaAdmin, 'slave_repl_offset') < await replicationOffset(primaryAdmin, 'master_repl_offset') && Date.now() < inStep) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(await replicationOffset(replicaAdmin, 'slave_repl_offset'), await replicationOffset(primaryAdmin, 'master_repl_offset'), 'the replica has every write of phase 1')
  const replicatedRevs = new Map((await cluster.hot.get([...expectedBuckets(accepted, Date.now()).values()].map((e) => e.ref))).map((b) => [`${b.ticker}#${b.resolution}@${b.start}`, b.rev]))

  // 2. Replication held back: the primary folds, publishes and writes behind what the replica never sees.
  relay.stall()
  await postAll(cluster.gateways, makeItems('b', 600, TICKERS, now, 1800), accepted)
  t.same((await waitForHot(cluster, accepted, 30_000)).problems.slice(0, 5), [], 'phase 2 folded on the primary')
  await waitConverged(t, 'phase 2', cluster, clients, [traveller], accepted)
  const away = { positions: { ...traveller.state.positions }, buckets: new Map(traveller.state.buckets) }
  traveller.close()
  t.ok(await replicationOffset(replicaAdmin, 'slave_repl_offset') < await replicationOffset(primaryAdmin, 'master_repl_offset'), 'the replica lags: phase 2 never reached it')

  // 3. The primary dies; the lagging replica is promoted behind the same address.
  await primary.kill()
  relay.refuse()
  relay.drop()
  await replicaAdmin.replicaof('NO', 'ONE')
  front.retarget({ host: '127.0.0.1', port: replica.port })
  front.drop()
  const rolledBack = await cluster.hot.get([...expectedBuckets(accepted, Date.now()).values()].map((e) => e.ref))
  t.ok(rolledBack.every((b) => b.rev === replicatedRevs.get(`${b.ticker}#${b.resolution}@${b.start}`)), 'the promoted Redis holds the states of phase 1: phase 2 is rolled back in it')
  const phase2 = compare(accepted, rolledBack)
  t.ok(phase2.problems.length > 0, `the rollback is real: ${phase2.problems.length} differences from the fold of everything accepted`)

  // 4. New items: the promoted Redis counts in a new term, above every position the lost primary
  // published or wrote, and folds on top of the newer states the archive kept.
  await postAll(cluster.gateways, makeItems('c', 300, TICKERS, now, 600), accepted)
  await waitConverged(t, 'after the failover', cluster, clients, [], accepted)
  // The traveller comes back, on the other gateway, with what it held: the failover started
  // a new term for every series, so none can be continued; snapshots replace what it held.
  const back = await WsTestClient.open(cluster.gateways[1]?.url as string)
  t.teardown(() => back.close())
  for (const [key, bucket] of away.buckets) back.state.buckets.set(key, bucket)
  const reply = await back.subscribe(TICKERS, WATCHED, away.positions)
  const series = TICKERS.flatMap((ticker) => WATCHED.map((resolution) => `${ticker}#${resolution}`)).sort()
  t.same(reply.not_recovered, series, 'every series is reported not recovered: its history is of an earlier term')
  for (const key of reply.not_recovered as string[]) {
    const [ticker, resolution] = key.split('#')
    back.send({ op: 'snapshot', id: key, ticker, resolution, start })
  }
  await waitConverged(t, 'the traveller, after snapshots', cluster, [back], [], accepted)
  const touched = [...expectedBuckets(makeItems('c', 300, TICKERS, now, 600), Date.now()).values()].map((e) => e.ref)
  const renewed = await cluster.hot.get(touched)
  t.ok(renewed.length === touched.length && renewed.every((b) => termOf(b.rev) > termOf(replicatedRevs.get(`${b.ticker}#${b.resolution}@${b.start}`) ?? 0)), 'every bucket changed after the failover counts in a new term')
  const want = expectedBuckets(accepted, Date.now())
  const hotProblems = renewed.flatMap((b) => differences(b, (want.get(bucketId(b)) as { aggregate: Aggregate }).aggregate).map((p) => `${bucketId(b)}: ${p}`))
  t.same(hotProblems.slice(0, 5), [], 'the promoted Redis holds the archived states plus the new items in every bucket they changed, nothing counted twice')
})

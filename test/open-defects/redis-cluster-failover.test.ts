/*
 * A Redis Cluster failover to a replica that lagged: 3 masters with one replica each; the
 * master that owns the tickers AAPL and MSFT (and the ingest queue) keeps folding,
 * publishing and writing behind while its replica's replication link is held back; then
 * the master is killed and `CLUSTER FAILOVER FORCE` promotes the lagging replica. The
 * archive, both gateways' history and both clients must converge to the exact fold of every
 * accepted item, and buckets changed after the failover must count in a new term.
 *
 * How the link is held back (test/helpers/redis-cluster-replicas.ts): a cluster replica
 * connects to the address its master announces on the cluster bus, so that master announces
 * a relay's port (`cluster-announce-port`) and its replica replicates through the relay;
 * clients use the same announced address, so Pulse and the checks are given
 * `REDIS_CLUSTER_NAT_MAP` from it to the master's own port and reach the master directly.
 * Stalling the relay stops the replication stream and nothing else: the replica's link stays
 * up (no resync, no catch-up) and it keeps exactly the writes of phase 1. What does not
 * work: `CLIENT PAUSE WRITE` on the replica does not pause its replication link; `DEBUG
 * SLEEP` or SIGSTOP on the replica only delay it (the writes wait in its socket and are
 * applied when it wakes, before a failover command could run); the master's
 * `cluster-announce-port` alone sends clients through the relay too.
 *
 * The old master is SIGKILLed before the failover and stays down: restarted, it would only
 * come back as a replica of the promoted one and drop the writes it alone held.
 */
import { Cluster } from 'ioredis'
import t, { type Test } from 'tap'
import { RedisKeys } from '../../shared/adapters/redis/keys.js'
import type { Resolution } from '../../shared/timeseries/resolutions.js'
import type { Aggregate, Bucket, ScoredItem } from '../../shared/timeseries/bucket.js'
import { type BucketRef, bucketId } from '../../shared/timeseries/keys.js'
import { termOf } from '../../shared/timeseries/revision.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import { differences, expectedBuckets } from '../helpers/expected.js'
import { assertConverged, postAll, type Watched } from '../helpers/failover-convergence.js'
import { compare, makeItems, type PulseOnRedis, startPulseOnRedis, waitForArchive, waitForHot } from '../helpers/fault-cluster.js'
import { cli, type RedisClusterNode, startRedisCluster } from '../helpers/redis-cluster.js'
import { addClusterReplicas } from '../helpers/redis-cluster-replicas.js'
import { WsTestClient } from '../helpers/stream-clients.js'

/** AAPL and MSFT share a master with the ingest queue (`{pulse}`); TSLA lives on another one. */
const FAILED_OVER = ['AAPL', 'MSFT']
const ELSEWHERE = 'TSLA'
const WATCHED: Watched = { tickers: [...FAILED_OVER, ELSEWHERE], resolutions: ['1m', '5m', '1h'] }

/**
 * When the archive misses a state, prints what the hot state says of each such bucket: its
 * rev against the archive's, its dirty mark and lease, its last write, the ticker's index
 * entry and dirty generation, and the worker's warnings.
 */
async function explainArchiveGaps (t: Test, pulse: PulseOnRedis, accepted: readonly ScoredItem[], seedUrl: string, natMap: Record<string, { host: string, port: number }>): Promise<void> {
  const gaps = (await waitForArchive(pulse, accepted, 1000)).problems
  if (gaps.length === 0) return
  const { hostname, port } = new URL(seedUrl)
  const redis = new Cluster([{ host: hostname, port: Number(port) }], { natMap })
  const keys = new RedisKeys(pulse.env.PULSE_ENV as string)
  try {
    for (const id of new Set(gaps.map((gap) => gap.split(':')[0] as string))) {
      const [series = '', start = ''] = id.split('@')
      const [ticker = '', resolution = ''] = series.split('#')
      const ref = { ticker, resolution: resolution as Resolution, start: Number(start) }
      const [hot] = await pulse.hot.get([ref])
      const [archived] = await pulse.archive.get([ref], Date.now())
      const member = `${resolution}:${start}`
      t.comment(`${id}: hot rev ${hot?.rev} count ${hot?.count}, archive rev ${archived?.rev} count ${archived?.count}; ` +
        `dirty score ${await redis.zscore(keys.dirty(ticker), member)}, written at ${await redis.zscore(keys.written(ticker), member)}, ` +
        `index score ${await redis.zscore(keys.dirtyTickers(), ticker)}, dirty-gen ${await redis.get(keys.dirtyGen(ticker))}, now ${Date.now()}`)
    }
    for (const worker of pulse.workers) t.comment(worker.output().split('\n').filter((line) => /"level":(40|50)/.test(line)).slice(-20).join('\n'))
  } finally {
    redis.disconnect()
  }
}

async function retried<T> (fn: () => Promise<T>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      return await fn()
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
}

t.test('a lagging cluster replica promoted by CLUSTER FAILOVER FORCE: archive, history and clients converge to one exact fold', async (t) => {
  const masters = await startRedisCluster(t)
  const owner = await masters.nodeOf(`{${FAILED_OVER[0] as string}}`)
  const relayed = masters.nodes.indexOf(owner)
  t.equal((await masters.nodeOf(`{${FAILED_OVER[1] as string}}`)).port, owner.port, 'both failed-over tickers live on one master')
  t.equal((await masters.nodeOf('{pulse}')).port, owner.port, 'and so does the ingest queue')
  t.not((await masters.nodeOf(`{${ELSEWHERE}}`)).port, owner.port, `${ELSEWHERE} lives on another master`)
  const replicas = await addClusterReplicas(t, masters, { relayed })
  const seed = masters.nodes.find((_, i) => i !== relayed) as RedisClusterNode
  const pulse = await startPulseOnRedis(t, { tickers: WATCHED.tickers as string[], gateways: 2, workers: 1, redisUrl: seed.url, redisCluster: { natMap: replicas.natMap } })
  const clients = await Promise.all(pulse.gateways.map(async (gateway) => await WsTestClient.open(gateway.url)))
  for (const client of clients) {
    t.teardown(() => client.close())
    await client.subscribe(WATCHED.tickers as string[], WATCHED.resolutions as string[])
  }
  const refsOf = (items: readonly ScoredItem[]): BucketRef[] => [...expectedBuckets(items, Date.now()).values()].map((e) => e.ref)
  const failedOver = (b: { ticker: string }): boolean => FAILED_OVER.includes(b.ticker)

  const now = Date.now()
  const accepted: ScoredItem[] = []
  // 1. In step: everything folded, written behind and replicated.
  await postAll(pulse.gateways, makeItems('a', 600, WATCHED.tickers, now, 1800), accepted)
  t.same((await waitForHot(pulse, accepted, 30_000)).problems.slice(0, 5), [], 'phase 1 folded')
  await assertConverged(t, 'phase 1', pulse, clients, accepted, WATCHED)
  const inStep = Date.now() + 15_000
  let offsets = await replicas.offsets(relayed)
  while (offsets.replica < offsets.master && Date.now() < inStep) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    offsets = await replicas.offsets(relayed)
  }
  t.equal(offsets.replica, offsets.master, 'the replica has every write of phase 1')
  const phase1Revs = new Map((await pulse.hot.get(refsOf(accepted))).map((b) => [bucketId(b), b.rev]))

  // 2. Replication held back: the master folds, publishes and writes behind what its replica never sees.
  replicas.relay.stall()
  await postAll(pulse.gateways, makeItems('b', 600, WATCHED.tickers, now, 1800), accepted)
  t.same((await waitForHot(pulse, accepted, 30_000)).problems.slice(0, 5), [], 'phase 2 folded')
  await assertConverged(t, 'phase 2', pulse, clients, accepted, WATCHED)
  offsets = await replicas.offsets(relayed)
  t.ok(offsets.replica < offsets.master, `the replica lags: phase 2 never reached it (offset ${offsets.replica} < ${offsets.master})`)
  const phase2Read = pulse.hot.get(refsOf(accepted))
  const watchdog = setTimeout(() => {
    // Some runs never get an answer to this read; a fresh client tells whether the cluster
    // answers, and redis-cli whether the master itself does and what it is doing.
    const fresh = new RedisHotState({ connection: seed.url, cluster: { natMap: replicas.natMap }, env: pulse.env.PULSE_ENV as string, dedupeWindowMs: 86_400_000 })
    fresh.get(refsOf(accepted)).then(
      (buckets) => t.comment(`the read has waited 15 s; a fresh client read ${buckets.length} buckets`),
      (err: unknown) => t.comment(`the read has waited 15 s; a fresh client failed too: ${String(err)}`)
    ).finally(() => { fresh.close().catch(() => {}) })
    const probe = async (port: number, ...args: string[]): Promise<string> => await cli(port, ...args).then((out) => out.trim().split('\n').filter((l) => /^(PONG|connected_clients|blocked_clients|aof_|rdb_bgsave_in_progress|master_repl_offset|role|connected_slaves|slave0|cluster_state|used_memory_human|mem_clients_slaves)/.test(l)).join(' '), (err: unknown) => `no answer (${String(err).slice(0, 80)})`)
    Promise.all([probe(owner.port, 'ping'), probe(owner.port, 'info', 'all'), probe(seed.port, 'cluster', 'info')]).then(
      ([ping, info, cluster]) => t.comment(`the relayed master: ${ping}; ${info}; the seed: ${cluster}`),
      () => {}
    )
  }, 15_000)
  const phase2Revs = new Map((await phase2Read).map((b) => [bucketId(b), b.rev]))
  clearTimeout(watchdog)

  // 3. The master dies and stays down; its lagging replica is forced to take over its slots.
  t.comment(`phases 1 and 2 took ${Math.round((Date.now() - now) / 1000)} s`)
  await masters.stopMaster(relayed, { kill: true })
  t.comment('the master is down')
  replicas.relay.refuse()
  replicas.relay.drop()
  t.comment('failing over')
  const failoverStart = Date.now()
  await replicas.forceFailover(relayed)
  const promoted = Date.now()
  t.comment('promoted')
  const rolledBack = await retried(async () => await pulse.hot.get(refsOf(accepted)))
  t.comment(`the replica took over in ${promoted - failoverStart} ms; a cluster client read from it ${Date.now() - promoted} ms later`)
  t.ok(rolledBack.filter(failedOver).every((b) => b.rev === phase1Revs.get(bucketId(b))), 'the promoted replica holds the states of phase 1 for the failed-over tickers: phase 2 is rolled back in it')
  t.ok(rolledBack.filter((b) => !failedOver(b)).every((b) => b.rev === phase2Revs.get(bucketId(b))), `${ELSEWHERE}'s master kept phase 2`)
  const lost = compare(accepted, rolledBack)
  t.ok(lost.problems.length > 0, `the rollback is real: ${lost.problems.length} differences from the fold of everything accepted`)

  // 4. New items: the failed-over tickers count in a new term, above every position the lost
  // master published or wrote, on top of the newer states the archive kept.
  const phase3 = makeItems('c', 300, WATCHED.tickers, now, 600)
  await postAll(pulse.gateways, phase3, accepted)
  await assertConverged(t, 'after the failover', pulse, clients, accepted, WATCHED)
  await explainArchiveGaps(t, pulse, accepted, seed.url, replicas.natMap)
  const touched = refsOf(phase3)
  const renewed = await pulse.hot.get(touched)
  t.equal(renewed.length, touched.length, 'the hot state holds every bucket the new items changed')
  // A ticker's term before the failover: the highest of its buckets (new items may also open a bucket no earlier item was in).
  const termBefore = (b: Bucket): number => Math.max(...[...phase2Revs].filter(([id]) => id.startsWith(`${b.ticker}#`)).map(([, rev]) => termOf(rev)))
  const terms = (b: Bucket): string => `${bucketId(b)}: term ${termBefore(b)} → ${termOf(b.rev)}`
  t.same(renewed.filter((b) => failedOver(b) && termOf(b.rev) <= termBefore(b)).map(terms), [], 'every failed-over bucket changed after the failover counts in a new term')
  t.same(renewed.filter((b) => !failedOver(b) && termOf(b.rev) !== termBefore(b)).map(terms), [], `${ELSEWHERE}, whose master never changed, keeps its term`)
  const want = expectedBuckets(accepted, Date.now())
  const hotProblems = renewed.flatMap((b) => differences(b, (want.get(bucketId(b)) as { aggregate: Aggregate }).aggregate).map((p) => `${bucketId(b)}: ${p}`))
  t.same(hotProblems.slice(0, 5), [], 'the hot state holds the archived states plus the new items in every bucket they changed, nothing counted twice')
})

import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import type { BucketEvent } from '../../shared/ports/bus.js'
import type { IngestBatch } from '../../shared/ports/ingest-queue.js'
import {
  BullmqIngestQueue, ingestShardOf, ingestShardPrefix, RedisBus, RedisHotState, RedisKeys, scheduleRepeatable
} from '../../shared/adapters/redis/index.js'
import { type ScoredItem, labelFor } from '../../shared/timeseries/bucket.js'
import { bucketId } from '../../shared/timeseries/keys.js'
import { differences, expectedBuckets } from '../helpers/expected.js'
import { startDynaliteProcess, startPulseProcess } from '../helpers/processes.js'
import { type RedisCluster, startRedisCluster } from '../helpers/redis-cluster.js'
import { foldWithTerm } from '../helpers/fold-with-term.js'

const DAY = 86_400_000
const cluster: RedisCluster = await startRedisCluster(t)

async function until (check: () => boolean | Promise<boolean>, ms = 20_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

/** Tickers whose keys (hash tag `{TICKER}`) live on each master: `perNode` of them per node. */
async function tickersOnEveryMaster (perNode: number): Promise<string[]> {
  const byPort = new Map<number, string[]>()
  for (let i = 0; byPort.size < cluster.nodes.length || [...byPort.values()].some((l) => l.length < perNode); i++) {
    const ticker = `T${i}`
    const node = await cluster.nodeOf(`{${ticker}}`)
    const list = byPort.get(node.port) ?? []
    if (list.length < perNode) list.push(ticker)
    byPort.set(node.port, list)
  }
  return [...byPort.values()].flat()
}

function items (tickers: readonly string[], count: number, now: number, prefix = 'i'): ScoredItem[] {
  return Array.from({ length: count }, (_, i) => {
    const score = Math.round(Math.sin(i * 3.7) * 1e6) / 1e6
    return { id: `${prefix}${i}`, ticker: tickers[i % tickers.length] as string, ts: now - ((i * 7919) % 7200) * 1000, score, label: labelFor(score), source: ['tiingo', 'finnhub'][i % 2] as string }
  })
}

/** Folds as the aggregator does: load (here: nothing archived) whenever the state asks. */
async function foldAll (hot: RedisHotState, batch: readonly ScoredItem[], now: number): Promise<void> {
  const byTicker = new Map<string, ScoredItem[]>()
  for (const item of batch) byTicker.set(item.ticker, [...(byTicker.get(item.ticker) ?? []), item])
  await Promise.all([...byTicker].map(async ([ticker, group]) => {
    for (;;) {
      const outcome = await foldWithTerm(hot, ticker, group, { now })
      if (outcome.kind === 'applied') return
      await hot.seed(outcome.refs, [])
    }
  }))
}

t.test('hot state on the cluster: tickers on every master fold exactly, read, flush and clean across nodes', async (t) => {
  const tickers = await tickersOnEveryMaster(2)
  const env = `t${randomUUID().slice(0, 8)}`
  const workers = Array.from({ length: 3 }, () => new RedisHotState({ connection: cluster.url, cluster: {}, env, dedupeWindowMs: DAY }))
  t.teardown(() => Promise.all(workers.map(async (w) => await w.close())))
  const now = Date.now()
  const all = items(tickers, 900, now)
  const resent = all.filter((_, i) => i % 7 === 0)
  const batches: ScoredItem[][] = []
  for (let i = 0; i < all.length; i += 50) batches.push(all.slice(i, i + 50))
  batches.push(resent)
  await Promise.all(batches.map(async (batch, i) => await foldAll(workers[i % workers.length] as RedisHotState, batch, now)))

  const expected = expectedBuckets(all, now)
  const reader = workers[0] as RedisHotState
  const stored = new Map((await reader.get([...expected.values()].map((e) => e.ref))).map((b) => [bucketId(b), b]))
  const problems = [...expected].flatMap(([key, e]) => differences(stored.get(key), e.aggregate).map((p) => `${key}: ${p}`))
  t.same(problems.slice(0, 10), [], `all ${expected.size} buckets of ${tickers.length} tickers on ${cluster.nodes.length} masters equal the domain fold (resends ignored)`)

  const ranged = await reader.range(tickers[0] as string, '1h', 0, now + DAY)
  t.same(ranged.map((b) => b.start), [...expected.values()].filter((e) => e.ref.ticker === tickers[0] && e.ref.resolution === '1h').map((e) => e.ref.start).sort((a, b) => a - b), 'range reads a series index')

  t.equal(await reader.dirtyCount(), expected.size, 'every changed bucket is dirty')
  const taken = await reader.takeDirty(expected.size + 10)
  t.equal(taken.length, expected.size, 'one flush takes the dirty buckets of every ticker, whichever master holds them')
  t.same(new Set(taken.map((b) => b.ticker)), new Set(tickers))
  await reader.markClean(taken)
  t.equal(await reader.dirtyCount(), 0, 'and marks them clean on their masters')
  await reader.ping()
})

t.test('sharded pub/sub: each series channel lives on the master of its ticker; reference-counted; back after a master restart', async (t) => {
  const [near, far] = [(await tickersOnEveryMaster(1))[0] as string, (await tickersOnEveryMaster(1))[2] as string]
  const env = `t${randomUUID().slice(0, 8)}`
  const keys = new RedisKeys(env)
  const bus = new RedisBus({ url: cluster.url, cluster: {}, env })
  t.teardown(() => bus.close())
  let resubscribed = 0
  bus.onResync(() => { resubscribed++ })
  const got: BucketEvent[] = []
  const other: BucketEvent[] = []
  const offNear = await bus.subscribe(`${near}#1m`, (e) => got.push(e))
  const offFar = await bus.subscribe(`${far}#1h`, (e) => other.push(e))

  // PUBSUB SHARDCHANNELS answers for the node it is sent to.
  const shardChannels = async (port: number): Promise<string[]> => {
    const node = new Redis(port, '127.0.0.1')
    try {
      return (await node.call('PUBSUB', 'SHARDCHANNELS', `pulse:${env}:*`) as string[]).sort()
    } finally {
      node.disconnect()
    }
  }
  const nearNode = await cluster.nodeOf(`{${near}}`)
  const farNode = await cluster.nodeOf(`{${far}}`)
  t.not(nearNode.port, farNode.port, 'the two tickers live on different masters')
  t.same(await shardChannels(nearNode.port), [keys.shardChannel(`${near}#1m`)], `the ${near} channel is a shard channel on ${near}'s master`)
  t.same(await shardChannels(farNode.port), [keys.shardChannel(`${far}#1h`)])

  const event = (ticker: string, resolution: '1m' | '1h', rev: number): BucketEvent => ({
    kind: 'change',
    bucket: { ticker, resolution, start: 0, open: 0, high: 0, low: 0, close: 0, count: 1, sum: 0, label_counts: { positive: 0, neutral: 1, negative: 0 }, sources: ['x'], first: { ts: 0, id: 'a' }, last: { ts: 0, id: 'a' }, rev, last_updated: rev }
  })
  await bus.publish([event(near, '1m', 1), event(far, '1h', 1), event(near, '1h', 1)])
  await until(() => got.length === 1 && other.length === 1, 10_000, 'both events')
  t.equal(got[0]?.bucket.ticker, near, 'each listener gets only its series')

  const index = cluster.nodes.findIndex((n) => n.port === nearNode.port)
  await cluster.restartMaster(index, { kill: true })
  t.comment(`master ${nearNode.port} (SIGKILL) restarted`)
  await until(async () => {
    await bus.publish([event(near, '1m', 2)]).catch(() => {})
    return got.some((e) => e.bucket.rev === 2)
  }, 60_000, 'events on the restarted master')
  t.pass('events flow again on the restarted master\'s channel')
  await until(() => resubscribed > 0, 10_000, 'the resubscribed signal')
  t.ok(resubscribed > 0, 'the bus reports that subscriptions were restored (messages in between were missed)')

  await offNear()
  await offFar()
  t.equal(bus.channelCount, 0)
  await until(async () => (await shardChannels(nearNode.port)).length === 0 && (await shardChannels(farNode.port)).length === 0, 10_000, 'SUNSUBSCRIBE')
  t.pass('unsubscribed on both masters after the last listener left')
  await bus.ping()
})

t.test('the fold script publishes each change on its sharded channel (SPUBLISH on the ticker\'s slot), in position order, as stored', async (t) => {
  const tickers = await tickersOnEveryMaster(1)
  const env = `t${randomUUID().slice(0, 8)}`
  const hot = new RedisHotState({ connection: cluster.url, cluster: {}, env, dedupeWindowMs: DAY })
  const bus = new RedisBus({ url: cluster.url, cluster: {}, env })
  t.teardown(async () => { await Promise.all([hot.close(), bus.close()]) })
  const heard = new Map<string, BucketEvent[]>(tickers.map((ticker) => [ticker, []]))
  for (const ticker of tickers) await bus.subscribe(`${ticker}#1m`, (e) => heard.get(ticker)?.push(e))
  const now = Date.now()
  const rounds = 5
  for (let round = 0; round < rounds; round++) {
    const batch = tickers.map((ticker, i): ScoredItem => ({ id: `p${round}`, ticker, ts: now, score: (round - i) / 7, label: labelFor((round - i) / 7), source: 'tiingo' }))
    await foldAll(hot, batch, now)
  }
  await until(() => [...heard.values()].every((events) => events.length === rounds), 10_000, 'every change on every master')
  for (const [ticker, events] of heard) {
    const revs = events.map((e) => e.bucket.rev)
    t.ok(revs.every((rev, i) => i === 0 || rev > (revs[i - 1] as number)), `${ticker}: positions in order`)
    const [stored] = await hot.get([{ ticker, resolution: '1m', start: Math.floor(now / 60_000) * 60_000 }])
    t.strictSame(events.at(-1)?.bucket, stored, `${ticker}: the last message is the stored bucket`)
  }
})

t.test('ingest shards: a batch becomes one job per shard, each shard on its own slot, workers consume every shard', async (t) => {
  const env = `t${randomUUID().slice(0, 8)}`
  const shards = 4
  const queue = new BullmqIngestQueue({ url: cluster.url, cluster: {}, env, shards, backoffMs: 20 })
  t.teardown(() => queue.close())
  const prefixes = Array.from({ length: shards }, (_, s) => ingestShardPrefix(s))
  t.equal(new Set(prefixes).size, shards, 'every shard has its own hash tag')
  const masters = new Set(await Promise.all(prefixes.map(async (p) => (await cluster.nodeOf(p)).port)))
  t.equal(masters.size, cluster.nodes.length, `the ${shards} shards spread over all ${cluster.nodes.length} masters`)

  const tickers = Array.from({ length: 40 }, (_, i) => `S${i}`)
  const batch = items(tickers, 400, Date.now(), 'q')
  const ids = (await queue.enqueue(batch, 7)).split(',')
  const used = new Set(tickers.map((ticker) => ingestShardOf(ticker, shards)))
  t.equal(ids.length, used.size, 'one job per shard the batch has items for')
  t.match(await queue.counts(), { waiting: used.size, active: 0, failed: 0 })
  for (const [s, shardQueue] of queue.shardQueues.entries()) {
    const jobs = await shardQueue.getWaiting()
    t.ok(jobs.every((job) => job.data.items.every((item) => ingestShardOf(item.ticker, shards) === s)), `shard ${s} holds only its tickers`)
  }

  // Three batches of one ticker, one after another: a shard is a FIFO queue.
  const order = ['o1', 'o2', 'o3'].map((prefix) => items(['ORD'], 5, Date.now(), prefix))
  for (const b of order) await queue.enqueue(b, 8)
  const got: IngestBatch[] = []
  const consumer = new BullmqIngestQueue({ url: cluster.url, cluster: {}, env, shards, concurrency: 1 })
  t.teardown(() => consumer.close())
  await consumer.consume(async (b) => { got.push(b) })
  await until(() => got.length === ids.length + order.length, 30_000, 'every job')
  const delivered = got.filter((b) => b.acceptedAt === 7).flatMap((b) => b.items).map((i) => i.id).sort()
  t.same(delivered, batch.map((i) => i.id).sort(), 'every item of the batch arrives once')
  t.same(got.filter((b) => b.acceptedAt === 8).map((b) => b.items[0]?.id), ['o10', 'o20', 'o30'], 'batches of one ticker are taken in order')
  await until(async () => (await queue.counts()).waiting === 0 && (await queue.counts()).active === 0, 10_000, 'an empty queue')
  await queue.ping()
})

t.test('a repeatable job on the cluster runs once per interval', async (t) => {
  const env = `t${randomUUID().slice(0, 8)}`
  const runs: string[] = []
  const a = await scheduleRepeatable({ url: cluster.url, cluster: {}, env }, 'finalize', 200, async (run) => { runs.push(run.jobId) })
  const b = await scheduleRepeatable({ url: cluster.url, cluster: {}, env }, 'finalize', 200, async (run) => { runs.push(run.jobId) })
  t.teardown(async () => { await a.close(); await b.close() })
  await until(() => runs.length >= 3, 20_000, 'three runs')
  t.equal(new Set(runs).size, runs.length, 'no run happened twice')
})

t.test('the rate limiter keeps its counters in the cluster: two gateways share one budget per client', async (t) => {
  const dynalite = await startDynaliteProcess(t)
  // The counter's key (@fastify/rate-limit: namespace, route, client address) on a master other than the seed node.
  let pulseEnv = ''
  let counter = ''
  do {
    pulseEnv = `t${randomUUID().slice(0, 8)}`
    counter = `pulse:${pulseEnv}:rl:GET/api/v2/tickers-127.0.0.1`
  } while ((await cluster.nodeOf(counter)).port === cluster.nodes[0]?.port)
  const env = { REDIS_URL: cluster.url, REDIS_CLUSTER: '1', DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: pulseEnv, RATE_LIMIT_READ: '6' }
  const gateways = [await startPulseProcess(t, { role: 'gateway', env }), await startPulseProcess(t, { role: 'gateway', env })]
  const statuses: number[] = []
  for (let i = 0; i < 8; i++) {
    const res = await fetch(`${gateways[i % 2]?.url ?? ''}/api/v2/tickers`)
    statuses.push(res.status)
    if (res.status === 429) t.match(await res.json(), { error: { code: 'PULSE_ERR_RATE_LIMITED' } })
    else await res.arrayBuffer()
  }
  t.same(statuses, [200, 200, 200, 200, 200, 200, 429, 429], 'six requests per minute across both gateways, then 429')
  const owner = new Redis((await cluster.nodeOf(counter)).port, '127.0.0.1')
  t.teardown(() => owner.disconnect())
  t.equal(await owner.get(counter), '8', 'the counter lives on the master of its slot')
})

import t from 'tap'
import type { Bucket, ScoredItem } from '../../shared/timeseries/bucket.js'
import { expectedBuckets, differences } from '../helpers/expected.js'
import { compare, makeItems, postUntilAccepted, startFaultCluster, waitForArchive, waitForHot, waitReady } from '../helpers/fault-cluster.js'
import { SseTestClient, until, WsTestClient } from '../helpers/stream-clients.js'

const TICKERS = ['AAPL', 'MSFT']
const WATCHED = ['1m', '1h']

/** Problems between what a client holds and the fold of `items`, for the watched series. */
function clientProblems (state: WsTestClient['state'], items: readonly ScoredItem[]): string[] {
  const problems: string[] = []
  for (const [key, e] of expectedBuckets(items, Date.now())) {
    if (!WATCHED.includes(e.ref.resolution)) continue
    const held = state.buckets.get(`${e.ref.ticker}#${e.ref.resolution}@${new Date(e.ref.start).toISOString().replace('.000Z', 'Z')}`)
    problems.push(...differences(held as unknown as Bucket | undefined, e.aggregate).map((p) => `${key}: ${p}`))
  }
  return problems
}

t.test('Redis restarted with AOF, then restarted empty: gateways and workers recover, clients end exact, DynamoDB never shrinks', async (t) => {
  const cluster = await startFaultCluster(t, { tickers: TICKERS, gateways: 2, workers: 1, aof: true })
  const [gatewayA, gatewayB] = cluster.gateways
  if (gatewayA === undefined || gatewayB === undefined) throw new Error('cluster did not start')
  const ws = await WsTestClient.open(gatewayA.url)
  t.teardown(() => ws.close())
  await ws.subscribe(TICKERS, WATCHED)
  const sse = new SseTestClient(`${gatewayB.url}/api/v2/stream?tickers=${TICKERS.join(',')}&resolutions=${WATCHED.join(',')}`)
  t.teardown(() => sse.close())
  await until(() => sse.opens > 0, 10_000, 'SSE open')

  const now = Date.now()
  const accepted: ScoredItem[] = []
  const phase = async (name: string, count: number): Promise<void> => {
    const items = makeItems(name, count, TICKERS, now, 3600)
    for (let i = 0; i < items.length; i += 200) {
      await postUntilAccepted(i % 400 === 0 ? gatewayA : gatewayB, items.slice(i, i + 200))
      accepted.push(...items.slice(i, i + 200))
    }
  }

  await phase('a', 2000)
  t.same((await waitForHot(cluster, accepted, 30_000)).problems.slice(0, 5), [], 'phase 1: 2000 items folded')
  t.same((await waitForArchive(cluster, accepted, 30_000)).problems.slice(0, 5), [], 'phase 1: written to DynamoDB')

  // 1. Restart with AOF: everything, including the dedupe set, survives.
  let restartedAt = Date.now()
  await cluster.redis.restart()
  const readyAof = Math.max(await waitReady(gatewayA), await waitReady(gatewayB))
  t.comment(`Redis restarted (AOF); both gateways ready ${Date.now() - restartedAt} ms after the restart began (${readyAof} ms after it answered)`)
  t.ok(Date.now() - restartedAt < 10_000, 'gateways ready within 10 s')
  await phase('b', 1000)
  await phase('a', 300) // resends of phase-1 ids: the dedupe set survived the restart
  const afterAof = await waitForHot(cluster, accepted, 30_000)
  t.same(afterAof.problems.slice(0, 5), [], `after the AOF restart: all ${afterAof.buckets} buckets in Redis exact (resends of phase 1 ignored)`)
  await until(() => clientProblems(ws.state, accepted).length === 0 && clientProblems(sse.state, accepted).length === 0, 20_000, 'clients to catch up after the AOF restart').catch(() => {})
  t.same(clientProblems(ws.state, accepted).slice(0, 5), [], 'the WebSocket client (gateway A) holds every watched bucket exactly, without reconnecting')
  t.same(clientProblems(sse.state, accepted).slice(0, 5), [], 'the SSE client (gateway B) holds every watched bucket exactly')

  // 2. Restart empty. Let the write-behind finish first: a Redis that loses its data loses
  // whatever was not yet written behind, which AOF exists to prevent.
  const drained = await waitForArchive(cluster, accepted, 30_000)
  t.same(drained.problems.slice(0, 5), [], 'before the empty restart: DynamoDB holds everything')
  const refs = [...expectedBuckets(accepted, Date.now()).values()].map((e) => e.ref)
  const before = new Map((await cluster.archive.get(refs, Date.now())).map((b) => [`${b.ticker}#${b.resolution}@${b.start}`, b]))
  restartedAt = Date.now()
  await cluster.redis.restart({ empty: true })
  await Promise.all([waitReady(gatewayA), waitReady(gatewayB)])
  t.comment(`Redis restarted empty; both gateways ready after ${Date.now() - restartedAt} ms; ${before.size} DynamoDB buckets snapshotted`)
  t.ok(Date.now() - restartedAt < 10_000, 'gateways ready within 10 s')
  await phase('c', 1500)
  const afterEmpty = await waitForHot(cluster, accepted, 45_000)
  t.same(afterEmpty.problems.slice(0, 5), [], `after the empty restart: all ${afterEmpty.buckets} buckets in Redis equal the fold of everything accepted (reloaded from DynamoDB, then folded)`)
  const archived = await waitForArchive(cluster, accepted, 45_000)
  t.same(archived.problems.slice(0, 5), [], 'DynamoDB equals the fold of everything accepted')
  const after = await cluster.archive.get(refs, Date.now())
  const shrunk = after.filter((b) => {
    const old = before.get(`${b.ticker}#${b.resolution}@${b.start}`)
    return old !== undefined && (b.count < old.count || b.rev < old.rev)
  })
  t.same(shrunk.map((b) => `${b.ticker}#${b.resolution}@${b.start}`), [], `no DynamoDB bucket has a smaller count or rev than before (${before.size} compared)`)
  t.equal(after.length, before.size, 'no DynamoDB bucket disappeared')

  await until(() => clientProblems(ws.state, accepted).length === 0 && clientProblems(sse.state, accepted).length === 0, 20_000, 'clients to catch up after the empty restart').catch(() => {})
  t.same(clientProblems(ws.state, accepted).slice(0, 5), [], 'the WebSocket client holds every watched bucket exactly after both restarts')
  t.same(clientProblems(sse.state, accepted).slice(0, 5), [], 'the SSE client holds every watched bucket exactly after both restarts')
  t.comment(`checked ${compare(accepted, after).buckets} buckets; WS client got ${ws.state.events.length} events, SSE client ${sse.state.events.length}`)
})

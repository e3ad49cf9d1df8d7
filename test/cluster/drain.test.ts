import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createDynamoClients } from '../../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../../shared/adapters/dynamo/dynamo-archive.js'
import { tableName } from '../../shared/adapters/dynamo/table.js'
import { RedisHotState } from '../../shared/adapters/redis/index.js'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { SHUTDOWN_BUDGET_MS } from '../../services/runtime.js'
import { differences, expectedBuckets } from '../helpers/expected.js'
import { type ManagedProcess, startDynaliteProcess, startPulseProcess } from '../helpers/processes.js'
import { eventually, startTestPulse, TEST_INGEST_KEY } from '../helpers/pulse.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { WsTestClient } from '../helpers/stream-clients.js'

const TICKERS = ['AAPL', 'MSFT', 'NVDA']
/** The gateway's drain here (`DRAIN_MS`; the cluster default is longer, for real load balancers). */
const DRAIN_MS = 3000
/** A shutdown must end within the drain plus the budget that close-with-grace enforces. */
const BOUND_MS = DRAIN_MS + SHUTDOWN_BUDGET_MS

function wire (item: ScoredItem): Record<string, unknown> {
  return { id: item.id, ticker: item.ticker, timestamp: new Date(item.ts).toISOString(), score: item.score, source: item.source }
}

/**
 * Posts batches to a gateway from `lanes` concurrent producers until stopped or the gateway
 * is gone; keeps the items of every 202 and counts the 503 `PULSE_ERR_SHUTTING_DOWN` answers.
 */
function startLoad (gateway: ManagedProcess, lanes = 4): { accepted: ScoredItem[], shuttingDown: () => number, stop: () => Promise<void> } {
  const accepted: ScoredItem[] = []
  const state = { stopped: false }
  let refusals = 0
  let next = 0
  const now = Date.now()
  const lane = async (): Promise<void> => {
    while (!state.stopped) {
      const batch: ScoredItem[] = []
      for (let i = 0; i < 25; i++, next++) {
        const score = Math.round(Math.sin(next * 3.7) * 1e6) / 1e6
        batch.push({ id: `d${next}`, ticker: TICKERS[next % TICKERS.length] as string, ts: now - ((next * 7919) % 3_600_000), score, label: labelFor(score), source: 'drain' })
      }
      const res = await fetch(`${gateway.url}/api/v2/items`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_INGEST_KEY}` },
        body: JSON.stringify(batch.map(wire))
      }).catch(() => undefined)
      if (res === undefined) return
      const body = await res.json().catch(() => undefined) as { error?: { code?: string } } | undefined
      if (res.status === 202) accepted.push(...batch)
      else if (body?.error?.code === 'PULSE_ERR_SHUTTING_DOWN') refusals++
      await sleep(5)
    }
  }
  const running = Promise.all(Array.from({ length: lanes }, lane))
  return {
    accepted,
    shuttingDown: () => refusals,
    stop: async () => {
      state.stopped = true
      await running
    }
  }
}

async function timedStop (proc: ManagedProcess): Promise<number> {
  const began = Date.now()
  await proc.kill('SIGTERM')
  return Date.now() - began
}

t.test('SIGTERM during load: worker and gateway drain in time and no accepted item is lost', async (t) => {
  const redis = await startRedisServer(t)
  const dynalite = await startDynaliteProcess(t)
  const env = { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: `d${randomBytes(3).toString('hex')}`, TICKERS: TICKERS.join(','), FLUSH_INTERVAL_MS: '2000' }
  const [gateway, worker] = await Promise.all([
    startPulseProcess(t, { role: 'gateway', env: { ...env, DRAIN_MS: String(DRAIN_MS) } }),
    startPulseProcess(t, { role: 'worker', env })
  ]) as [ManagedProcess, ManagedProcess]
  const hot = new RedisHotState({ connection: redis.url, env: env.PULSE_ENV, dedupeWindowMs: 86_400_000 })
  t.teardown(async () => await hot.close())
  const client = await WsTestClient.open(gateway.url, '?tickers=AAPL&resolutions=1m')
  t.teardown(() => client.close())

  const load = startLoad(gateway)
  await sleep(1500)
  const workerMs = await timedStop(worker)
  t.ok(workerMs < BOUND_MS, `worker exited ${workerMs} ms after SIGTERM`)
  t.match(worker.output(), /shut down cleanly/, 'worker shut down by itself, not by the grace timeout')
  t.equal(await hot.dirtyCount(), 0, 'the worker flushed every dirty bucket before it exited')

  await sleep(500)
  const stopping = timedStop(gateway)
  const duringDrain = await eventually(async () => {
    const res = await fetch(`${gateway.url}/readyz`).catch(() => undefined)
    return res?.status === 503 ? await res.json() as { checks: Record<string, string> } : undefined
  }, 5000, 'readyz to fail during the drain')
  t.equal(duringDrain.checks.process, 'shutting down', 'readyz names the drain')
  let streamClosed = false
  client.closedPromise.then(() => { streamClosed = true }, () => {})
  const fresh = await fetch(`${gateway.url}/api/v2/stream?tickers=AAPL`).catch(() => undefined)
  t.equal(fresh?.status, 503, 'a new stream is refused during the drain')
  await fresh?.body?.cancel()
  t.notOk(streamClosed, 'while readiness fails, the open stream is not closed yet: the load balancer must notice first')
  t.equal(await client.closedPromise, 1012, 'then WebSocket clients are told to reconnect (1012)')
  const gatewayMs = await stopping
  await load.stop()
  t.ok(gatewayMs >= DRAIN_MS - 500 && gatewayMs < BOUND_MS, `gateway exited ${gatewayMs} ms after SIGTERM (drain ${DRAIN_MS} ms)`)
  t.match(gateway.output(), /shut down cleanly/, 'gateway shut down by itself')
  t.ok(load.shuttingDown() > 0, `requests during the drain got 503 PULSE_ERR_SHUTTING_DOWN (${load.shuttingDown()})`)
  t.ok(load.accepted.length > 0, `${load.accepted.length} items accepted under load`)

  // A fresh worker takes what the stopped one left queued; then every 202 must be in the buckets.
  const successor = await startPulseProcess(t, { role: 'worker', env })
  const expected = expectedBuckets(load.accepted, Date.now())
  const refs = [...expected.values()].map((e) => e.ref)
  let problems: string[] = []
  await eventually(async () => {
    const byKey = new Map((await hot.get(refs)).map((b) => [`${b.ticker}#${b.resolution}@${b.start}`, b]))
    problems = [...expected].flatMap(([key, e]) => differences(byKey.get(key), e.aggregate).map((p) => `${key}: ${p}`))
    return problems.length === 0 ? true : undefined
  }, 60_000, 'Redis to hold every accepted item').catch(() => {})
  t.same(problems.slice(0, 20), [], `all ${expected.size} buckets in Redis equal the fold of every accepted item`)
  await successor.kill('SIGTERM')
  t.match(successor.output(), /shut down cleanly/, 'the successor shut down by itself')
  t.equal(await hot.dirtyCount(), 0, 'nothing left dirty')
  const { doc, client: dynamo } = createDynamoClients({ region: 'us-east-1', endpoint: dynalite.endpoint })
  t.teardown(() => dynamo.destroy())
  const stored = new Map((await new DynamoArchive({ client: doc, tableName: tableName(env.PULSE_ENV) }).get(refs, Date.now())).map((b) => [`${b.ticker}#${b.resolution}@${b.start}`, b]))
  const archived = [...expected].flatMap(([key, e]) => differences(stored.get(key), e.aggregate).map((p) => `${key}: ${p}`))
  t.same(archived.slice(0, 20), [], 'and so does DynamoDB')
})

t.test('in process: during a drain new requests get 503 PULSE_ERR_SHUTTING_DOWN and readyz fails', async (t) => {
  const p = await startTestPulse(t, {}, { drainMs: 1500 })
  const closing = p.pulse.close()
  const refused = await p.post([{ id: 'x' }])
  t.equal(refused.status, 503)
  t.equal(refused.body.error.code, 'PULSE_ERR_SHUTTING_DOWN')
  const ready = await p.get('/readyz')
  t.equal(ready.status, 503)
  t.equal(ready.body.checks.process, 'shutting down')
  t.equal((await p.get('/healthz')).status, 200, 'still alive while draining')
  await closing
})

t.test('in process: open streams stay open through the drain and close after it, once readiness has failed', async (t) => {
  const p = await startTestPulse(t, {}, { drainMs: 1500 })
  const client = await WsTestClient.open(p.url, '?tickers=AAPL&resolutions=1m')
  t.teardown(() => client.close())
  let closedAt: number | undefined
  client.closedPromise.then(() => { closedAt = Date.now() }, () => {})
  const closing = p.pulse.close()
  const ready = await p.get('/readyz')
  t.equal(ready.status, 503, 'readiness fails at once')
  t.equal(closedAt, undefined, 'the stream is still open while readiness fails')
  t.equal(await client.closedPromise, 1012, 'it closes with 1012 after the drain')
  await closing
})

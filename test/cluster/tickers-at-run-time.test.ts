import t from 'tap'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { randomBytes } from 'node:crypto'
import { wire } from '../helpers/fault-cluster.js'
import { type ManagedProcess, startDynaliteProcess, startPulseProcess } from '../helpers/processes.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { eventually, TEST_INGEST_KEY } from '../helpers/pulse.js'
import { WsWatcher } from '../helpers/ws-watcher.js'

const ADMIN_TOKEN = 'admin-token-0123456789'
const NEW = 'NVDA'

t.setTimeout(180_000)

async function post (gateway: ManagedProcess, items: readonly ScoredItem[]): Promise<{ status: number, code: string | undefined }> {
  const res = await fetch(`${gateway.url}/api/v2/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_INGEST_KEY}` },
    body: JSON.stringify(items.map(wire))
  })
  const body = await res.json() as { error?: { code: string } }
  return { status: res.status, code: body.error?.code }
}

async function admin (gateway: ManagedProcess, method: 'POST' | 'DELETE', ticker: string): Promise<number> {
  const res = await fetch(`${gateway.url}/api/v2/admin/tickers${method === 'DELETE' ? `/${ticker}` : ''}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
    ...(method === 'POST' ? { body: JSON.stringify({ ticker }) } : {})
  })
  await res.arrayBuffer()
  return res.status
}

async function listed (gateway: ManagedProcess): Promise<string[]> {
  const body = await (await fetch(`${gateway.url}/api/v2/tickers`)).json() as { tickers: Array<{ ticker: string }> }
  return body.tickers.map((row) => row.ticker)
}

async function foldedBy (worker: ManagedProcess): Promise<number> {
  const text = await (await fetch(`${worker.url}/metrics`)).text()
  return Number(/^pulse_folded_items_total(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 0)
}

let sequence = 0
/** Every item in one 1m bucket, so one bucket's count says how many were folded, whenever the test reads it. */
const ITEM_TS = Math.floor(Date.now() / 60_000) * 60_000 + 1000
function items (count: number, ticker = NEW): ScoredItem[] {
  return Array.from({ length: count }, () => {
    const score = 0.25
    return { id: `r${sequence++}`, ticker, ts: ITEM_TS, score, label: labelFor(score), source: 'tiingo' }
  })
}

/** The count of the items' 1m bucket as a gateway's history answers it. */
async function historyCount (gateway: ManagedProcess): Promise<number | undefined> {
  const start = new Date(ITEM_TS - 1000).toISOString()
  const body = await (await fetch(`${gateway.url}/api/v2/timeseries/${NEW}?resolution=1m&start=${start}`)).json() as { buckets: Array<{ count: number }>, partial_bucket: { count: number } | null }
  return [...body.buckets, ...(body.partial_bucket === null ? [] : [body.partial_bucket])][0]?.count
}

t.test('2 gateways, 2 workers: a ticker added on one gateway is served everywhere within seconds, and retired everywhere', async (t) => {
  const redis = await startRedisServer(t)
  const dynalite = await startDynaliteProcess(t)
  const env = { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: `t${randomBytes(3).toString('hex')}`, TICKERS: 'AAPL', ADMIN_TOKEN, FLUSH_INTERVAL_MS: '500' }
  // One after another: four processes starting at once on a loaded machine can outlast the start timeout.
  const gatewayA = await startPulseProcess(t, { role: 'gateway', env })
  const gatewayB = await startPulseProcess(t, { role: 'gateway', env })
  const workers = [await startPulseProcess(t, { role: 'worker', env }), await startPulseProcess(t, { role: 'worker', env })]
  t.equal((await post(gatewayB, items(1))).code, 'PULSE_ERR_VALIDATION', 'before: B refuses the unknown ticker')

  t.equal(await admin(gatewayA, 'POST', NEW), 201, 'added on gateway A')
  const added = Date.now()
  const watcher = new WsWatcher()
  t.teardown(() => watcher.close())
  await watcher.connect(gatewayA.url, [NEW], ['1m'])
  t.same(watcher.errors, [], 'A accepts a stream subscription to it at once')

  // Gateway B learns of it by its poll: post until it accepts.
  const first = items(10)
  await eventually(async () => (await post(gatewayB, first)).status === 202 ? true : undefined, 10_000, 'gateway B accepts the new ticker')
  const acceptedAfterMs = Date.now() - added
  t.comment(`gateway B accepted ${NEW} ${acceptedAfterMs} ms after it was added on A`)
  t.ok(acceptedAfterMs < 5000, 'within a few seconds')
  await eventually(async () => (await listed(gatewayB)).includes(NEW) ? true : undefined, 5000, 'B lists it')

  // Both workers fold its items: batches until each has folded some.
  const before = await Promise.all(workers.map(foldedBy))
  let posted = first.length
  await eventually(async () => {
    const batch = items(10)
    if ((await post(gatewayB, batch)).status === 202) posted += batch.length
    const now = await Promise.all(workers.map(foldedBy))
    return now.every((n, i) => n > (before[i] ?? 0)) ? true : undefined
  }, 30_000, 'both workers fold items of the new ticker')
  t.pass('both workers folded items of the new ticker')

  const seen = (): number | undefined => [...watcher.latest.values()].find((b) => b.ticker === NEW && b.resolution === '1m')?.count
  await eventually(() => seen() === posted ? true : undefined, 15_000, `the WebSocket client on A receives the live state (${posted} items)`).catch((err: unknown) => {
    t.fail(`the client on A holds count ${String(seen())} of ${posted}: ${(err as Error).message}`)
  })
  t.equal(seen(), posted, `the client on A saw all ${posted} items live`)

  t.equal(await admin(gatewayA, 'DELETE', NEW), 200, 'retired on gateway A')
  const retired = Date.now()
  // Until B's poll sees the retirement, B still accepts (and the workers fold) what it is sent.
  let lateAccepted = 0
  await eventually(async () => {
    const answer = await post(gatewayB, items(1))
    if (answer.status === 202) lateAccepted++
    return answer.code === 'PULSE_ERR_TICKER_RETIRED' ? true : undefined
  }, 10_000, 'gateway B refuses the retired ticker')
  posted += lateAccepted
  t.comment(`gateway B refused ${NEW} ${Date.now() - retired} ms after it was retired on A (accepting ${lateAccepted} single-item batches meanwhile)`)
  t.ok(Date.now() - retired < 5000, 'within a few seconds')
  await eventually(async () => (await listed(gatewayB)).includes(NEW) ? undefined : true, 5000, 'B no longer lists it')

  for (const gateway of [gatewayA, gatewayB]) {
    t.equal(await historyCount(gateway), posted, 'its history stays readable, with every accepted item and none of the refused')
  }
})

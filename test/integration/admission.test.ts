import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { armFaults } from '../../shared/fault-points.js'
import { bucketStart } from '../../shared/timeseries/resolutions.js'
import { startDynaliteProcess } from '../helpers/processes.js'
import { eventually, startTestPulse, type TestPulse } from '../helpers/pulse.js'
import { startRedisServer } from '../helpers/redis-server.js'

const TICKERS = ['AAPL', 'MSFT', 'NVDA']
const LIMIT = 2000
const BATCH = 400

t.setTimeout(240_000)

/** A batch of distinct items timestamped now, spread over the tickers. */
function batch (tag: string, n: number): Array<Record<string, unknown>> {
  const timestamp = new Date().toISOString()
  return Array.from({ length: n }, (_, i) => ({ id: `${tag}-${i}`, ticker: TICKERS[i % TICKERS.length], timestamp, score: 0.5, source: 'tiingo' }))
}

/** Items folded so far for the test tickers: the 24h buckets' counts (each item lands in one). */
async function foldedCount (p: TestPulse): Promise<number> {
  const start = bucketStart(Date.now(), '24h')
  let count = 0
  for (const ticker of TICKERS) {
    for (const bucket of await p.pulse.adapters.hot.range(ticker, '24h', start - 86_400_000, start + 86_400_000)) count += bucket.count
  }
  return count
}

/** Posts batches round-robin over `gateways` until one is refused; returns the items accepted and the refusal. */
async function postUntilRefused (t: Test, gateways: TestPulse[]): Promise<{ accepted: number, refusal: Response, body: any }> {
  let accepted = 0
  for (let i = 0; i < 100; i++) {
    const gateway = gateways[i % gateways.length] as TestPulse
    const res = await fetch(`${gateway.url}/api/v2/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer test-ingest-key-0123456789' },
      body: JSON.stringify(batch(`b${i}`, BATCH))
    })
    if (res.status === 202) {
      accepted += BATCH
      await res.arrayBuffer()
      continue
    }
    return { accepted, refusal: res, body: await res.json() }
  }
  t.fail(`accepted ${accepted} items and never refused one`)
  throw new Error('never refused')
}

async function checkRefusal (t: Test, refused: { accepted: number, refusal: Response, body: any }, gateways: TestPulse[]): Promise<void> {
  t.equal(refused.refusal.status, 503, 'past the backlog ingest answers 503')
  t.equal(refused.body.error.code, 'PULSE_ERR_BACKLOG_FULL', 'with its own code')
  t.ok(Number(refused.refusal.headers.get('retry-after')) > 0, `and Retry-After (${String(refused.refusal.headers.get('retry-after'))})`)
  t.ok(refused.accepted >= LIMIT && refused.accepted <= LIMIT + gateways.length * BATCH, `refused once the backlog reached the limit (${refused.accepted} accepted, limit ${LIMIT})`)
  for (const [i, gateway] of gateways.entries()) {
    const ready = await gateway.get('/readyz')
    t.equal(ready.status, 200, `gateway ${i}: still ready (streams and history are served)`)
    t.match(ready.body.checks.ingest, /backlog full: \d+ items wait to be folded \(limit 2000\)/, `gateway ${i}: /readyz says why ingest refuses`)
    const metrics = (await gateway.get('/metrics')).body as string
    t.match(metrics, /^pulse_ingest_admitting 0$/m, `gateway ${i}: pulse_ingest_admitting 0`)
    t.match(metrics, new RegExp(`^pulse_ingest_backlog\\{unit="items"\\} ${refused.accepted}$`, 'm'), `gateway ${i}: pulse_ingest_backlog counts every accepted item`)
    t.match(metrics, /^pulse_ingest_backlog_limit\{unit="items"\} 2000$/m)
    const second = await gateway.post(batch(`refused-${i}`, 10))
    t.equal(second.status, 503, `gateway ${i}: refuses too (the backlog is shared)`)
  }
  t.match((await (gateways[0] as TestPulse).get('/metrics')).body, /^pulse_items_rejected_total\{code="PULSE_ERR_BACKLOG_FULL"\} \d+$/m, 'refused items are counted by code')
}

async function checkRecovered (t: Test, accepted: number, gateways: TestPulse[], folder: TestPulse): Promise<void> {
  const folded = await eventually(async () => {
    const n = await foldedCount(folder)
    return n >= accepted ? n : undefined
  }, 60_000, 'every accepted item folded')
  t.equal(folded, accepted, 'every accepted item was folded exactly once')
  for (const [i, gateway] of gateways.entries()) {
    await eventually(async () => (await gateway.get('/readyz')).body.checks.ingest === undefined ? true : undefined, 10_000, 'readiness clear')
    t.equal((await gateway.post(batch(`after-${i}`, 10))).status, 202, `gateway ${i}: admits again once the fold caught up`)
    // A scrape reuses the backlog reading of the scrape before for a moment (ADMISSION_READ_REUSE_MS).
    await eventually(async () => /^pulse_ingest_admitting 1$/m.test((await gateway.get('/metrics')).body as string) ? true : undefined, 10_000, 'pulse_ingest_admitting 1')
    t.match((await gateway.get('/metrics')).body, /^pulse_ingest_admitting 1$/m)
  }
  await eventually(async () => await foldedCount(folder) === accepted + 10 * gateways.length ? true : undefined, 30_000, 'the later batches folded')
}

t.test('cluster: two gateways sharing a queue with no worker refuse past the backlog, lose nothing, and admit again', async (t) => {
  const redis = await startRedisServer(t)
  const dynalite = await startDynaliteProcess(t)
  const env = {
    REDIS_URL: redis.url,
    DYNAMODB_ENDPOINT: dynalite.endpoint,
    PULSE_ENV: `q${randomBytes(3).toString('hex')}`,
    TICKERS: TICKERS.join(','),
    INGEST_SHARDS: '2',
    INGEST_BACKLOG_MAX_ITEMS: String(LIMIT)
  }
  const gateways = [
    await startTestPulse(t, { ...env, ROLE: 'gateway' }, { drainMs: 0 }),
    await startTestPulse(t, { ...env, ROLE: 'gateway' }, { drainMs: 0 })
  ]
  const refused = await postUntilRefused(t, gateways)
  await checkRefusal(t, refused, gateways)
  // The fold runs: a worker starts on the same queue.
  const worker = await startTestPulse(t, { ...env, ROLE: 'worker' })
  await checkRecovered(t, refused.accepted, gateways, worker)
})

t.test('embedded: a held fold makes ingest refuse past the backlog; every accepted item is folded once it runs', async (t) => {
  // The first batch's fold is held long enough to fill the backlog; then everything folds.
  armFaults('aggregator.before-fold=delay:8000@1')
  t.teardown(() => armFaults(''))
  const p = await startTestPulse(t, { TICKERS: TICKERS.join(','), INGEST_BACKLOG_MAX_ITEMS: String(LIMIT) })
  const refused = await postUntilRefused(t, [p])
  await checkRefusal(t, refused, [p])
  await checkRecovered(t, refused.accepted, [p], p)
})

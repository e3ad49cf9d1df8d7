import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { eventually, startTestPulse, type TestPulse } from '../helpers/pulse.js'

const ADMIN_TOKEN = 'admin-token-0123456789'

/** Every item in one 1m bucket, so its count says what was folded however long the test (and its restart) takes. */
const ITEM_TS = Math.floor(Date.now() / 60_000) * 60_000 + 1000

function item (id: string, ticker: string): Record<string, unknown> {
  return { id, ticker, timestamp: new Date(ITEM_TS).toISOString(), score: 0.5, source: 'tiingo' }
}

/** The count of the items' 1m bucket of `ticker` as history answers it (undefined: no bucket). */
async function count (pulse: TestPulse, ticker: string): Promise<number | undefined> {
  const { body } = await pulse.get(`/api/v2/timeseries/${ticker}?resolution=1m&start=${new Date(ITEM_TS - 1000).toISOString()}`)
  return [...body.buckets, ...(body.partial_bucket === null ? [] : [body.partial_bucket])][0]?.count
}

async function admin (pulse: TestPulse, method: string, path: string, body?: unknown, token: string | null = ADMIN_TOKEN): Promise<{ status: number, body: any }> {
  const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' }
  if (token !== null) headers.authorization = `Bearer ${token}`
  const res = await fetch(`${pulse.url}/api/v2/admin/tickers${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  return { status: res.status, body: await res.json() }
}

const listed = async (pulse: TestPulse): Promise<string[]> => (await pulse.get('/api/v2/tickers')).body.tickers.map((row: { ticker: string }) => row.ticker)

t.test('without ADMIN_TOKEN the admin API is off', async (t) => {
  const pulse = await startTestPulse(t, { TICKERS: 'AAPL' })
  const refused = await admin(pulse, 'POST', '', { ticker: 'NVDA' })
  t.equal(refused.status, 404)
  t.equal(refused.body.error.code, 'PULSE_ERR_ADMIN_DISABLED')
  t.same(await listed(pulse), ['AAPL'], 'nothing was added')
})

t.test('embedded: add, ingest, retire, refuse, read history, restart', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pulse-admin-'))
  t.teardown(async () => await rm(dataDir, { recursive: true, force: true }))
  const env = { DATA_DIR: dataDir, TICKERS: 'AAPL', ADMIN_TOKEN }
  let pulse = await startTestPulse(t, env)

  for (const token of [null, 'wrong-token-0123456789']) {
    const refused = await admin(pulse, 'POST', '', { ticker: 'NVDA' }, token)
    t.equal(refused.status, 401, `token ${String(token)}: 401`)
    t.equal(refused.body.error.code, 'PULSE_ERR_UNAUTHORIZED')
  }
  for (const body of [{ ticker: 'nvda' }, { ticker: 'NVDA', extra: 1 }, ['NVDA'], {}]) {
    const bad = await admin(pulse, 'POST', '', body)
    t.equal(bad.status, 400, `${JSON.stringify(body)}: 400`)
    t.equal(bad.body.error.code, 'PULSE_ERR_VALIDATION')
  }
  t.same(await listed(pulse), ['AAPL'], 'refused requests changed nothing')

  const before = await pulse.post([item('n0', 'NVDA')])
  t.equal(before.status, 400, 'an unknown ticker is refused before it is added')

  const added = await admin(pulse, 'POST', '', { ticker: 'NVDA' })
  t.equal(added.status, 201)
  t.match(added.body, { ticker: 'NVDA', state: 'active', changed: true })
  const again = await admin(pulse, 'POST', '', { ticker: 'NVDA' })
  t.equal(again.status, 200, 'adding again is idempotent')
  t.equal(again.body.changed, false)
  t.same(await listed(pulse), ['AAPL', 'NVDA'], 'the listing follows at once')

  t.equal((await pulse.post([item('n1', 'NVDA'), item('n2', 'NVDA')])).status, 202, 'the added ticker accepts items')
  await eventually(async () => await count(pulse, 'NVDA') === 2 ? true : undefined, 10_000, 'NVDA folded')

  const retired = await admin(pulse, 'DELETE', '/NVDA')
  t.equal(retired.status, 200)
  t.match(retired.body, { ticker: 'NVDA', state: 'retired', changed: true })
  t.equal((await admin(pulse, 'DELETE', '/NVDA')).body.changed, false, 'retiring again is idempotent')
  const unknown = await admin(pulse, 'DELETE', '/TSLA')
  t.equal(unknown.status, 404)
  t.equal(unknown.body.error.code, 'PULSE_ERR_UNKNOWN_TICKER')
  t.equal((await admin(pulse, 'DELETE', '/bad')).status, 400)

  const refused = await pulse.post([item('a1', 'AAPL'), item('n3', 'NVDA')])
  t.equal(refused.status, 409, 'a batch naming a retired ticker is refused whole')
  t.equal(refused.body.error.code, 'PULSE_ERR_TICKER_RETIRED')
  t.same(refused.body.error.details, [{ index: 1, field: 'ticker', message: 'NVDA is retired and accepts no more items' }])
  t.same(await listed(pulse), ['AAPL'], 'a retired ticker leaves the listing')

  t.equal((await pulse.get('/api/v2/timeseries/NVDA?resolution=1m')).status, 200, 'its history stays readable')
  t.equal(await count(pulse, 'NVDA'), 2, 'and holds what was folded; nothing of the refused batch')
  t.equal((await fetch(`${pulse.url}/api/v2/timeseries/NVDA/export?resolution=1h`).then(async (r) => { await r.arrayBuffer(); return r.status })), 200, 'its export too')
  t.equal(await count(pulse, 'AAPL'), undefined, 'AAPL got nothing of the refused batch')

  // A restart with another TICKERS: the registry, not TICKERS, is the set from now on.
  await pulse.pulse.close()
  pulse = await startTestPulse(t, { ...env, TICKERS: 'AAPL,MSFT' })
  const all = await admin(pulse, 'GET', '')
  t.same(all.body.tickers.map((e: { ticker: string, state: string }) => `${e.ticker}:${e.state}`), ['AAPL:active', 'NVDA:retired'], 'the restart keeps the added and retired tickers, and does not apply TICKERS again')
  t.equal((await pulse.post([item('n4', 'NVDA')])).body.error?.code, 'PULSE_ERR_TICKER_RETIRED', 'still retired after the restart')
  t.equal(await count(pulse, 'NVDA'), 2, 'its history is still readable after the restart')
  t.equal((await admin(pulse, 'POST', '', { ticker: 'NVDA' })).status, 201, 'a retired ticker can be added again')
  t.equal((await pulse.post([item('n5', 'NVDA')])).status, 202, 'and accepts items again')
})

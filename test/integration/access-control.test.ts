import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import t from 'tap'
import WebSocket from 'ws'
import { startTestPulse, TEST_INGEST_KEY } from '../helpers/pulse.js'

const OLD_KEY = 'old-ingest-key-abcdefghij'
const READ_TOKEN = 'read-token-0123456789'
const METRICS_TOKEN = 'metrics-token-0123456789'
const ORIGIN = 'https://dash.example.com'

function item (id: string): Record<string, unknown> {
  return { id, ticker: 'AAPL', timestamp: new Date().toISOString(), score: 0.2, source: 'tiingo' }
}

async function status (url: string, init: RequestInit = {}): Promise<{ status: number, code: string | undefined, headers: Headers }> {
  const controller = new AbortController()
  const res = await fetch(url, { ...init, signal: controller.signal })
  let code: string | undefined
  if (res.headers.get('content-type')?.includes('json') === true) code = ((await res.json()) as { error?: { code?: string } }).error?.code
  controller.abort()
  return { status: res.status, code, headers: res.headers }
}

/** Status of a WebSocket upgrade: 101 when it opened, else the HTTP status of the refusal. */
async function upgrade (url: string, headers: Record<string, string> = {}): Promise<number> {
  return await new Promise((resolve) => {
    const socket = new WebSocket(url, { headers })
    socket.on('open', () => { socket.terminate(); resolve(101) })
    socket.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); socket.terminate() })
    socket.on('error', () => resolve(0))
  })
}

t.test('who gets in and who is refused', async (t) => {
  const p = await startTestPulse(t, { INGEST_API_KEY: `${TEST_INGEST_KEY},${OLD_KEY}`, READ_TOKEN, METRICS_TOKEN, ALLOWED_ORIGINS: ORIGIN })
  const rows: string[] = []
  const expect = async (what: string, got: { status: number, code?: string | undefined } | number, wantStatus: number, wantCode?: string): Promise<void> => {
    const s = typeof got === 'number' ? got : got.status
    const c = typeof got === 'number' ? undefined : got.code
    rows.push(`${what}: ${s}${c === undefined ? '' : ` ${c}`}`)
    t.equal(s, wantStatus, `${what} → ${wantStatus}`)
    if (wantCode !== undefined) t.equal(c, wantCode, `${what} → ${wantCode}`)
  }
  const items = `${p.url}/api/v2/items`
  const post = (headers: Record<string, string>): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify([item(randomBytes(4).toString('hex'))]) })

  // Ingest: INGEST_API_KEY, comma-separated for rotation.
  await expect('ingest without a key', await status(items, post({})), 401, 'PULSE_ERR_UNAUTHORIZED')
  await expect('ingest with a wrong key', await status(items, post({ authorization: 'Bearer wrong-key-0123456789' })), 401, 'PULSE_ERR_UNAUTHORIZED')
  await expect('ingest with a prefix of the key', await status(items, post({ authorization: `Bearer ${TEST_INGEST_KEY.slice(0, -1)}` })), 401, 'PULSE_ERR_UNAUTHORIZED')
  await expect('ingest with the key as Basic', await status(items, post({ authorization: `Basic ${TEST_INGEST_KEY}` })), 401, 'PULSE_ERR_UNAUTHORIZED')
  await expect('ingest with the READ_TOKEN', await status(items, post({ authorization: `Bearer ${READ_TOKEN}` })), 401, 'PULSE_ERR_UNAUTHORIZED')
  await expect('ingest with the key in ?token=', await status(`${items}?token=${TEST_INGEST_KEY}`, post({})), 401, 'PULSE_ERR_UNAUTHORIZED')
  await expect('ingest with the current key', await status(items, post({ authorization: `Bearer ${TEST_INGEST_KEY}` })), 202)
  await expect('ingest with the previous key (rotation)', await status(items, post({ authorization: `bearer ${OLD_KEY}` })), 202)
  await expect('ingest without a key and a 2 MB body (refused before the body is read)', await status(items, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(2_000_000) }), 401, 'PULSE_ERR_UNAUTHORIZED')

  // Reads: READ_TOKEN as a bearer or ?token=.
  for (const path of ['/api/v2/timeseries/AAPL?resolution=1m', '/api/v2/tickers']) {
    const sep = path.includes('?') ? '&' : '?'
    await expect(`GET ${path} without a token`, await status(`${p.url}${path}`), 401, 'PULSE_ERR_UNAUTHORIZED')
    await expect(`GET ${path} with a wrong token`, await status(`${p.url}${path}`, { headers: { authorization: 'Bearer nope' } }), 401, 'PULSE_ERR_UNAUTHORIZED')
    await expect(`GET ${path} with the ingest key`, await status(`${p.url}${path}`, { headers: { authorization: `Bearer ${TEST_INGEST_KEY}` } }), 401, 'PULSE_ERR_UNAUTHORIZED')
    await expect(`GET ${path} with Bearer READ_TOKEN`, await status(`${p.url}${path}`, { headers: { authorization: `Bearer ${READ_TOKEN}` } }), 200)
    await expect(`GET ${path} with ?token=READ_TOKEN`, await status(`${p.url}${path}${sep}token=${READ_TOKEN}`), 200)
  }
  await expect('SSE without a token', await status(`${p.url}/api/v2/stream`), 401, 'PULSE_ERR_UNAUTHORIZED')
  await expect('SSE with ?token=', await status(`${p.url}/api/v2/stream?token=${READ_TOKEN}`), 200)
  const ws = `${p.url.replace('http', 'ws')}/api/v2/ws`
  await expect('WS without a token', await upgrade(ws), 401)
  await expect('WS with Bearer READ_TOKEN', await upgrade(ws, { authorization: `Bearer ${READ_TOKEN}` }), 101)
  await expect('WS with ?token= and an allowed Origin', await upgrade(`${ws}?token=${READ_TOKEN}`, { origin: ORIGIN }), 101)
  await expect('WS with ?token= and a foreign Origin', await upgrade(`${ws}?token=${READ_TOKEN}`, { origin: 'https://evil.example' }), 403)
  await expect('WS with ?token= and Origin "null"', await upgrade(`${ws}?token=${READ_TOKEN}`, { origin: 'null' }), 403)

  // CORS follows ALLOWED_ORIGINS.
  const preflight = async (origin: string): Promise<string | null> => (await status(`${p.url}/api/v2/timeseries/AAPL?resolution=1m`, {
    method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' }
  })).headers.get('access-control-allow-origin')
  const allowed = await preflight(ORIGIN)
  rows.push(`CORS preflight from ${ORIGIN}: allow-origin ${allowed}`)
  t.equal(allowed, ORIGIN, 'CORS: the allowed origin is echoed')
  const foreign = await preflight('https://evil.example')
  rows.push(`CORS preflight from https://evil.example: allow-origin ${foreign}`)
  t.equal(foreign, null, 'CORS: a foreign origin gets no Access-Control-Allow-Origin')

  // Always public: liveness, readiness and the dashboard.
  await expect('GET /healthz without credentials', await status(`${p.url}/healthz`), 200)
  await expect('GET / without credentials', await status(`${p.url}/`), 200)

  // Metrics: METRICS_TOKEN.
  if (existsSync(new URL('../../services/gateway/plugins/metrics.ts', import.meta.url))) {
    await expect('GET /metrics without a token', await status(`${p.url}/metrics`), 401, 'PULSE_ERR_UNAUTHORIZED')
    await expect('GET /metrics with the READ_TOKEN', await status(`${p.url}/metrics`, { headers: { authorization: `Bearer ${READ_TOKEN}` } }), 401, 'PULSE_ERR_UNAUTHORIZED')
    await expect('GET /metrics with Bearer METRICS_TOKEN', await status(`${p.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }), 200)
  }
  t.comment(`access matrix:\n${rows.join('\n')}`)
})

t.test('without READ_TOKEN reads are public; without ALLOWED_ORIGINS any origin may connect', async (t) => {
  const p = await startTestPulse(t)
  t.equal((await status(`${p.url}/api/v2/timeseries/AAPL?resolution=1m`)).status, 200, 'history is public')
  t.equal((await status(`${p.url}/api/v2/tickers`)).status, 200, 'tickers are public')
  t.equal(await upgrade(`${p.url.replace('http', 'ws')}/api/v2/ws`, { origin: 'https://anywhere.example' }), 101, 'WS from any origin')
})

t.test('per-IP rate limits on ingest and history (embedded)', async (t) => {
  const p = await startTestPulse(t, { RATE_LIMIT_INGEST: '3', RATE_LIMIT_READ: '5' })
  const ingest: number[] = []
  for (let i = 0; i < 5; i++) ingest.push((await p.post([item(`rl${i}`)])).status)
  t.same(ingest, [202, 202, 202, 429, 429], 'ingest: 3 per minute, then 429')
  const limited = await p.post([item('rl-x')])
  t.equal(limited.body.error.code, 'PULSE_ERR_RATE_LIMITED', 'with PULSE_ERR_RATE_LIMITED')
  const history: number[] = []
  for (let i = 0; i < 7; i++) history.push((await p.get('/api/v2/timeseries/AAPL?resolution=1m')).status)
  t.same(history, [200, 200, 200, 200, 200, 429, 429], 'history: 5 per minute, then 429')
  const res = await fetch(`${p.url}/api/v2/timeseries/AAPL?resolution=1m`)
  t.ok(Number(res.headers.get('retry-after')) > 0, 'a 429 says when to retry')
  t.equal((await p.get('/healthz')).status, 200, 'health checks are not limited')
  t.comment(`ingest statuses ${ingest.join(',')}; history statuses ${history.join(',')}`)
})

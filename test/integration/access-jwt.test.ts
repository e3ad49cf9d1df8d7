import t from 'tap'
import { AccessClient, hsToken, signingKey, startJwksServer, TEST_JWT_SECRET, unsignedToken } from '../helpers/jwt.js'
import { eventually, startTestPulse, type TestPulse } from '../helpers/pulse.js'
import { ENGINES, engineUnavailable } from '../helpers/stream-clients.js'

/*
 * Reader JWTs end to end on a real embedded Pulse: hostile tokens on every transport,
 * entitlements on history, listing, snapshots and subscriptions, refresh and expiry over
 * a live WebSocket, stream tickets, per-subject limits, and a JWKS server on loopback
 * whose keys rotate.
 */

const ISSUER = 'https://auth.example.com'
const AUDIENCE = 'pulse'
const READ_TOKEN = 'read-token-0123456789'
const TICKERS = 'AAPL,MSFT,TECH.A,TECH.B'

function item (ticker: string, id: string): Record<string, unknown> {
  return { id, ticker, timestamp: new Date().toISOString(), score: 0.4, source: 'tiingo' }
}

async function status (url: string, init: RequestInit = {}): Promise<{ status: number, code: string | undefined, body: any }> {
  const controller = new AbortController()
  const res = await fetch(url, { ...init, signal: controller.signal })
  let body: any
  if (res.headers.get('content-type')?.includes('json') === true) body = await res.json()
  controller.abort()
  return { status: res.status, code: body?.error?.code, body }
}

const bearer = (token: string): RequestInit => ({ headers: { authorization: `Bearer ${token}` } })
const good = async (options: Parameters<typeof hsToken>[0] = {}): Promise<string> => await hsToken({ issuer: ISSUER, audience: AUDIENCE, ...options })

async function startHs (t: Parameters<typeof startTestPulse>[0], env: Record<string, string> = {}): Promise<TestPulse> {
  return await startTestPulse(t, { TICKERS, JWT_SECRET: TEST_JWT_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, READ_TOKEN, ...env })
}

for (const engine of ENGINES) {
  const skip = engineUnavailable(engine)
  const onEngine = { GATEWAY_ENGINE: engine }

  t.test(`${engine}: hostile tokens are refused with the right status and code on HTTP, WebSocket and SSE`, { skip }, async (t) => {
    const p = await startHs(t, onEngine)
    const cases: Array<[string, string | undefined, number, string]> = [
      ['no token', undefined, 401, 'PULSE_ERR_UNAUTHORIZED'],
      ['expired', await good({ expiresIn: -60 }), 401, 'PULSE_ERR_TOKEN_EXPIRED'],
      ['not yet valid (nbf in 10 min)', await good({ notBeforeIn: 600 }), 401, 'PULSE_ERR_UNAUTHORIZED'],
      ['wrong signature (other secret)', await hsToken({ issuer: ISSUER, audience: AUDIENCE }, 'another-secret-0123456789abcdefghijklmn'), 401, 'PULSE_ERR_UNAUTHORIZED'],
      ['alg none', unsignedToken({ issuer: ISSUER, audience: AUDIENCE }), 401, 'PULSE_ERR_UNAUTHORIZED'],
      ['wrong issuer', await hsToken({ issuer: 'https://evil.example', audience: AUDIENCE }), 401, 'PULSE_ERR_UNAUTHORIZED'],
      ['wrong audience', await hsToken({ issuer: ISSUER, audience: 'other' }), 401, 'PULSE_ERR_UNAUTHORIZED'],
      ['no exp', await good({ noExp: true }), 401, 'PULSE_ERR_UNAUTHORIZED'],
      ['RS256 without JWKS_URL', await (await signingKey('k1', 'RS256')).sign({ issuer: ISSUER, audience: AUDIENCE }), 401, 'PULSE_ERR_UNAUTHORIZED'],
      ['oversized (about 11 KB)', await good({ tickers: Array.from({ length: 1000 }, (_, i) => `TK${i}`) }), 401, 'PULSE_ERR_UNAUTHORIZED'],
      ['bad tickers claim', await good({ tickers: 'AAPL' }), 401, 'PULSE_ERR_UNAUTHORIZED'],
      ['garbage', 'not.a.jwt', 401, 'PULSE_ERR_UNAUTHORIZED']
    ]
    const rows: string[] = []
    for (const [what, token, wantStatus, wantCode] of cases) {
      const init = token === undefined ? {} : bearer(token)
      const history = await status(`${p.url}/api/v2/timeseries/AAPL?resolution=1m`, init)
      const sse = await status(`${p.url}/api/v2/stream?tickers=AAPL`, init)
      const ws = await AccessClient.open(p.url, token === undefined ? {} : { authorization: `Bearer ${token}` })
      const wsResult = ws instanceof AccessClient ? { status: 101, code: undefined } : ws
      if (ws instanceof AccessClient) ws.close()
      for (const [transport, got] of [['HTTP', history], ['SSE', sse], ['WS', wsResult]] as const) {
        rows.push(`| ${what} | ${transport} | ${got.status} ${got.code ?? ''} |`)
        t.equal(got.status, wantStatus, `${what} on ${transport}: ${wantStatus}`)
        t.equal(got.code, wantCode, `${what} on ${transport}: ${wantCode}`)
      }
    }
    t.equal((await status(`${p.url}/healthz`)).status, 200, 'the gateway is still up')
    const ok = await status(`${p.url}/api/v2/timeseries/AAPL?resolution=1m`, bearer(await good()))
    t.equal(ok.status, 200, 'a good token reads')
    t.equal((await status(`${p.url}/api/v2/timeseries/AAPL?resolution=1m`, bearer(READ_TOKEN))).status, 200, 'READ_TOKEN still reads everything')
    t.comment(`hostile-token table:\n| case | transport | status code |\n|---|---|---|\n${rows.join('\n')}`)
  })

  t.test(`${engine}: entitlements bound history, the tickers listing, snapshots and subscriptions`, { skip }, async (t) => {
    const p = await startHs(t, onEngine)
    const token = await good({ sub: 'bob', tickers: ['AAPL', 'TECH.*'], resolutions: ['1m', '1h'] })
    const read = async (path: string): Promise<{ status: number, code: string | undefined }> => await status(`${p.url}${path}`, bearer(token))
    t.equal((await read('/api/v2/timeseries/AAPL?resolution=1m')).status, 200, 'a listed ticker')
    t.equal((await read('/api/v2/timeseries/TECH.B?resolution=1h')).status, 200, 'a ticker matching TECH.*')
    const other = await read('/api/v2/timeseries/MSFT?resolution=1m')
    t.same([other.status, other.code], [403, 'PULSE_ERR_NOT_ENTITLED'], 'another ticker: 403')
    t.equal((await read('/api/v2/timeseries/AAPL?resolution=24h')).code, 'PULSE_ERR_NOT_ENTITLED', 'a resolution outside the claim: 403')
    t.equal((await read('/api/v2/timeseries/MSFT/export?resolution=1m')).code, 'PULSE_ERR_NOT_ENTITLED', 'an export outside the claims: 403')
    t.equal((await fetch(`${p.url}/api/v2/timeseries/AAPL/export?resolution=1m&format=csv`, bearer(token))).status, 200, 'an export inside them streams')
    const listing = await status(`${p.url}/api/v2/tickers`, bearer(token))
    t.same(listing.body.tickers.map((e: { ticker: string }) => e.ticker), ['AAPL', 'TECH.A', 'TECH.B'], 'the listing shows the entitled tickers only')

    const client = await AccessClient.open(p.url, { authorization: `Bearer ${token}` })
    if (!(client instanceof AccessClient)) throw new Error(`upgrade refused: ${client.status}`)
    t.teardown(() => client.close())
    client.send({ op: 'subscribe', tickers: ['AAPL', 'MSFT'], resolutions: ['1m'] })
    const subscribed = await eventually(() => client.of('subscribed')[0], 5000, 'subscribed')
    const refusal = client.of('error')[0]
    t.equal(refusal?.code, 'PULSE_ERR_NOT_ENTITLED', 'the series outside the entitlement get their own error')
    t.same(refusal?.series, ['MSFT#1m'], 'naming them')
    t.equal(subscribed.subscriptions, 1, 'the rest of the subscription stands')
    client.send({ op: 'snapshot', id: 'm1', ticker: 'MSFT', resolution: '1m' })
    const snapshotError = await eventually(() => client.of('error').find((e) => e.id === 'm1'), 5000, 'snapshot refusal')
    t.equal(snapshotError.code, 'PULSE_ERR_NOT_ENTITLED', 'a snapshot outside the entitlement is refused')
    client.send({ op: 'snapshot', id: 'a1', ticker: 'AAPL', resolution: '1m' })
    await eventually(() => client.of('snapshot').find((e) => e.id === 'a1'), 5000, 'AAPL snapshot')
    t.equal((await p.post([item('MSFT', 'e-msft'), item('AAPL', 'e-aapl')])).status, 202)
    await eventually(() => client.events.find((e) => e.type === 'partial_bucket' && e.ticker === 'AAPL'), 10_000, 'AAPL event')
    t.notOk(client.events.some((e) => e.ticker === 'MSFT'), 'no MSFT event reaches the client')

    // SSE: the entitled part streams, the rest is named by an error event; nothing entitled is a 403.
    t.equal((await status(`${p.url}/api/v2/stream?tickers=MSFT`, bearer(token))).code, 'PULSE_ERR_NOT_ENTITLED', 'SSE with only unentitled tickers: 403')
    const controller = new AbortController()
    const res = await fetch(`${p.url}/api/v2/stream?tickers=AAPL,MSFT`, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal })
    t.equal(res.status, 200, 'SSE with a mixed selection opens')
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    let text = ''
    await eventually(async () => { text += new TextDecoder().decode((await reader.read()).value); return text.includes('PULSE_ERR_NOT_ENTITLED') ? true : undefined }, 5000, 'SSE error event')
    t.match(text, /event: error\ndata: .*"series":\["MSFT#1m"\]/, 'the SSE error event names the refused series')
    controller.abort()
  })

  t.test(`${engine}: a WebSocket refreshes its token in place; a narrower token drops what it no longer covers; at exp it closes with 4001`, { skip }, async (t) => {
    const p = await startHs(t, onEngine)
    const short = await good({ sub: 'carol', expiresIn: 3 })
    const client = await AccessClient.open(p.url, { authorization: `Bearer ${short}` })
    if (!(client instanceof AccessClient)) throw new Error(`upgrade refused: ${client.status}`)
    t.teardown(() => client.close())
    client.send({ op: 'subscribe', tickers: ['AAPL', 'MSFT'], resolutions: ['1m'] })
    await eventually(() => client.of('subscribed')[0], 5000, 'subscribed')

    client.send({ op: 'refresh', token: await hsToken({ sub: 'carol', issuer: ISSUER, audience: AUDIENCE }, 'another-secret-0123456789abcdefghijklmn') })
    const refused = await eventually(() => client.of('error')[0], 5000, 'refused refresh')
    t.equal(refused.code, 'PULSE_ERR_UNAUTHORIZED', 'a badly signed refresh is refused; the connection stays')
    client.send({ op: 'refresh', token: await good({ sub: 'mallory' }) })
    await eventually(() => client.of('error')[1], 5000, 'refused refresh for another subject')
    t.match(client.of('error')[1]?.message, /same subject/, 'a refresh for another subject is refused')

    client.send({ op: 'refresh', token: await good({ sub: 'carol', tickers: ['AAPL'], expiresIn: 120 }) })
    const refreshed = await eventually(() => client.of('refreshed')[0], 5000, 'refreshed')
    t.same(refreshed.dropped, ['MSFT#1m'], 'the narrower token drops MSFT')
    t.same(client.of('error').find((e) => e.code === 'PULSE_ERR_NOT_ENTITLED')?.series, ['MSFT#1m'], 'with an error naming it')
    await new Promise((resolve) => setTimeout(resolve, 3500))
    t.equal(client.closed, undefined, 'past the first token\'s exp the refreshed connection is open')
    client.send({ op: 'ping' })
    await eventually(() => client.of('pong')[0], 5000, 'pong')

    const expiring = await AccessClient.open(p.url, { authorization: `Bearer ${await good({ sub: 'dave', expiresIn: 2 })}` })
    if (!(expiring instanceof AccessClient)) throw new Error('upgrade refused')
    const started = Date.now()
    const closed = await eventually(() => expiring.closed, 10_000, 'close at exp')
    t.equal(closed.code, 4001, 'closed with 4001 at exp')
    t.ok(Date.now() - started < 8000, `closed ${Date.now() - started} ms after opening (exp 2 s), not at some later check`)
    t.equal(expiring.of('error')[0]?.code, 'PULSE_ERR_TOKEN_EXPIRED', 'after an error event saying why')

    // An event stream cannot be refreshed: it ends at exp, after the same event.
    const res = await fetch(`${p.url}/api/v2/stream?tickers=AAPL`, { headers: { authorization: `Bearer ${await good({ sub: 'dave', expiresIn: 2 })}` } })
    t.equal(res.status, 200)
    const text = await res.text()
    t.match(text, /event: error\ndata: \{"code":"PULSE_ERR_TOKEN_EXPIRED"/, 'the event stream ends at exp with an error event')
  })

  t.test(`${engine}: stream tickets: issued for a bearer token, single use, carrying the entitlement`, { skip }, async (t) => {
    const p = await startHs(t, onEngine)
    t.equal((await status(`${p.url}/api/v2/stream/tickets`, { method: 'POST' })).status, 401, 'a ticket needs a token')
    const token = await good({ sub: 'erin', tickers: ['AAPL'] })
    const issued = await status(`${p.url}/api/v2/stream/tickets`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
    t.equal(issued.status, 201, 'issued')
    const ticket = issued.body.ticket as string
    t.ok(Date.parse(issued.body.expires_at) - Date.now() <= 30_000, 'valid for at most 30 s')
    t.equal((await status(`${p.url}/api/v2/stream?tickers=MSFT&ticket=${ticket}`)).code, 'PULSE_ERR_NOT_ENTITLED', 'the ticket carries the entitlement (and is used up by the attempt)')
    const second = (await status(`${p.url}/api/v2/stream/tickets`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).body.ticket as string
    t.equal((await status(`${p.url}/api/v2/stream?tickers=AAPL&ticket=${second}`)).status, 200, 'a ticket opens an event stream')
    const again = await status(`${p.url}/api/v2/stream?tickers=AAPL&ticket=${second}`)
    t.same([again.status, again.code], [401, 'PULSE_ERR_UNAUTHORIZED'], 'a used ticket is refused')
    t.equal((await status(`${p.url}/api/v2/stream?tickers=AAPL&ticket=made-up`)).status, 401, 'an unknown ticket is refused')
    const shortLived = (await status(`${p.url}/api/v2/stream/tickets`, { method: 'POST', headers: { authorization: `Bearer ${await good({ sub: 'erin', expiresIn: 1 })}` } })).body.ticket as string
    await new Promise((resolve) => setTimeout(resolve, 1500))
    t.equal((await status(`${p.url}/api/v2/stream?tickers=AAPL&ticket=${shortLived}`)).code, 'PULSE_ERR_TOKEN_EXPIRED', 'a ticket ends with its token')
  })
}

t.test('per-subject limits: streams, subscriptions and history reads', async (t) => {
  const p = await startHs(t, { SUBJECT_MAX_CONNECTIONS: '2', SUBJECT_MAX_SUBSCRIPTIONS: '3', RATE_LIMIT_READ_SUBJECT: '4' })
  const frank = { authorization: `Bearer ${await good({ sub: 'frank' })}` }
  const first = await AccessClient.open(p.url, frank)
  const second = await AccessClient.open(p.url, frank)
  const third = await AccessClient.open(p.url, frank)
  t.ok(first instanceof AccessClient && second instanceof AccessClient, 'two streams open')
  t.same(third, { status: 429, code: 'PULSE_ERR_RATE_LIMITED' }, 'the third stream of the subject is refused')
  const other = await AccessClient.open(p.url, { authorization: `Bearer ${await good({ sub: 'grace' })}` })
  t.ok(other instanceof AccessClient, 'another subject still connects')
  if (!(first instanceof AccessClient) || !(second instanceof AccessClient) || !(other instanceof AccessClient)) return
  t.teardown(() => { first.close(); second.close(); other.close() })
  first.send({ op: 'subscribe', tickers: ['AAPL', 'MSFT'], resolutions: ['1m'] })
  await eventually(() => first.of('subscribed')[0], 5000, 'subscribed')
  second.send({ op: 'subscribe', tickers: ['AAPL', 'MSFT'], resolutions: ['1h'] })
  const over = await eventually(() => second.of('error')[0], 5000, 'over the subject subscription limit')
  t.equal(over.code, 'PULSE_ERR_TOO_MANY_SUBSCRIPTIONS', 'past 3 series over its streams the subject is refused')
  second.send({ op: 'subscribe', tickers: ['AAPL'], resolutions: ['1h'] })
  t.equal((await eventually(() => second.of('subscribed')[0], 5000, 'within the limit')).subscriptions, 1, 'within the limit it subscribes')
  first.close()
  await eventually(async () => (await AccessClient.open(p.url, frank).then((c) => { if (c instanceof AccessClient) { c.close(); return true } return undefined })), 5000, 'a slot back after a close')

  const reads: number[] = []
  for (let i = 0; i < 6; i++) reads.push((await status(`${p.url}/api/v2/timeseries/AAPL?resolution=1m`, { headers: frank })).status)
  t.same(reads, [200, 200, 200, 200, 429, 429], 'history: 4 reads a minute for the subject, then 429')
  t.equal((await status(`${p.url}/api/v2/timeseries/AAPL?resolution=1m`, bearer(await good({ sub: 'grace' })))).status, 200, 'another subject still reads')
})

t.test('JWKS: RS256 and ES256 keys fetched, rotated, kept while the server is down; unknown kids fail closed', async (t) => {
  const a = await signingKey('key-a', 'RS256')
  const b = await signingKey('key-b', 'ES256')
  const stranger = await signingKey('key-x', 'RS256')
  const jwks = await startJwksServer([a])
  const p = await startTestPulse(t, { TICKERS, JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: '0' })
  const read = async (token: string): Promise<{ status: number, code: string | undefined }> => await status(`${p.url}/api/v2/timeseries/AAPL?resolution=1m`, bearer(token))
  t.equal((await read(await a.sign())).status, 200, 'RS256 with key a')
  t.equal((await read(await hsToken())).status, 401, 'HS256 is refused when only JWKS_URL is set')
  t.equal((await read(await stranger.sign())).code, 'PULSE_ERR_UNAUTHORIZED', 'a kid the JWKS does not hold fails closed')
  jwks.keys = [b]
  t.equal((await read(await b.sign())).status, 200, 'after rotation, ES256 key b is fetched on its first token')
  t.equal((await read(await a.sign())).status, 401, 'key a, gone from the JWKS, no longer verifies')
  // A slow JWKS: a token with an unknown kid waits at most the fetch timeout, and meanwhile
  // tokens with held keys verify at once.
  jwks.delayMs = 10_000
  const slowStart = Date.now()
  const unknownWhileSlow = read(await (await signingKey('key-y', 'ES256')).sign())
  await new Promise((resolve) => setTimeout(resolve, 100))
  const heldStart = Date.now()
  t.equal((await read(await b.sign())).status, 200, 'while a fetch hangs, a held key verifies')
  const heldMs = Date.now() - heldStart
  t.ok(heldMs < 1000, `without waiting for the fetch (${heldMs} ms)`)
  t.equal((await unknownWhileSlow).status, 401, 'the unknown kid fails closed once the fetch times out')
  t.ok(Date.now() - slowStart < 5000, `after the 2 s fetch timeout (${Date.now() - slowStart} ms)`)
  jwks.delayMs = 0
  const fetches = jwks.fetches
  await jwks.close()
  t.equal((await read(await b.sign())).status, 200, 'with the JWKS server down the held key still verifies')
  const started = Date.now()
  t.equal((await read(await stranger.sign())).status, 401, 'an unknown kid with the server down fails closed')
  t.ok(Date.now() - started < 5000, `within the 2 s fetch timeout, not stalled (${Date.now() - started} ms)`)
  t.ok(fetches >= 2, `the JWKS was fetched ${fetches} times`)
})

t.test('per-IP stream limits also hold for open reads', async (t) => {
  const p = await startTestPulse(t, { TICKERS, IP_MAX_CONNECTIONS: '2', IP_MAX_SUBSCRIPTIONS: '2' })
  const first = await AccessClient.open(p.url)
  const second = await AccessClient.open(p.url)
  t.same(await AccessClient.open(p.url), { status: 429, code: 'PULSE_ERR_RATE_LIMITED' }, 'the third stream from one address is refused')
  if (!(first instanceof AccessClient) || !(second instanceof AccessClient)) throw new Error('two streams should open')
  t.teardown(() => { first.close(); second.close() })
  t.equal((await status(`${p.url}/api/v2/stream?tickers=AAPL`)).code, 'PULSE_ERR_RATE_LIMITED', 'SSE counts too')
  first.send({ op: 'subscribe', tickers: ['AAPL', 'MSFT'], resolutions: ['1m'] })
  await eventually(() => first.of('subscribed')[0], 5000, 'subscribed')
  second.send({ op: 'subscribe', tickers: ['AAPL'], resolutions: ['1h'] })
  t.equal((await eventually(() => second.of('error')[0], 5000, 'refused')).code, 'PULSE_ERR_TOO_MANY_SUBSCRIPTIONS', 'past 2 series from one address')
})

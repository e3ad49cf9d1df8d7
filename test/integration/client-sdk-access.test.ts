import t from 'tap'
import WebSocket from 'ws'
import { type Bucket, connect, type ConnectionState, type WebSocketConstructor } from '../../web/client/src/index.js'
import { hsToken, TEST_JWT_SECRET } from '../helpers/jwt.js'
import { eventually, startTestPulse } from '../helpers/pulse.js'

/*
 * The SDK with reader JWTs: a token supplier refreshes the live WebSocket before `exp`
 * (no reconnection), a series outside the token's claims fails its subscription while the
 * others flow, and the SSE fallback sends Authorization from a fetch-based stream.
 */

function item (ticker: string, id: string): Record<string, unknown> {
  return { id, ticker, timestamp: new Date().toISOString(), score: 0.3, source: 'tiingo' }
}

/** `ws`, recording what the SDK sends. */
function recordingWebSocket (sent: Array<Record<string, unknown>>): WebSocketConstructor {
  return class extends WebSocket {
    override send (data: unknown, ...rest: unknown[]): void {
      sent.push(JSON.parse(String(data)) as Record<string, unknown>)
      ;(super.send as (...args: unknown[]) => void)(data, ...rest)
    }
  } as unknown as WebSocketConstructor
}

t.test('the SDK refreshes its JWT over the live WebSocket and honours entitlements', async (t) => {
  const p = await startTestPulse(t, { JWT_SECRET: TEST_JWT_SECRET })
  let supplied = 0
  const supplier = async (): Promise<string> => { supplied++; return await hsToken({ sub: 'sdk-user', tickers: ['AAPL'], expiresIn: 3 }) }
  const sent: Array<Record<string, unknown>> = []
  const client = connect({ url: p.url, token: supplier, WebSocket: recordingWebSocket(sent), backoff: { baseMs: 50, capMs: 400 } })
  t.teardown(() => client.close())
  const states: ConnectionState[] = []
  client.on('state', (state) => states.push(state))
  const aapl: Bucket[] = []
  const allowed = client.subscribe('AAPL', '1m', (b) => aapl.push(b))
  const refused = client.subscribe('MSFT', '1m', () => {})
  const refusal = await refused.ready.then(() => undefined, (err: { code?: string }) => err)
  t.equal(refusal?.code, 'PULSE_ERR_NOT_ENTITLED', 'a series outside the claims fails its subscription')
  await allowed.ready
  t.equal(allowed.state === 'failed', false, 'the entitled subscription stands')

  await eventually(() => sent.find((m) => m.op === 'refresh'), 6000, 'a refresh before exp')
  await new Promise((resolve) => setTimeout(resolve, 4000))
  t.notOk(states.includes('reconnecting'), `no reconnection past the first token's exp (states: ${states.join(' ')})`)
  t.ok(supplied >= 2, `the supplier was asked again (${supplied} times)`)
  t.equal((await p.post([item('AAPL', 'sdk-after-exp')])).status, 202)
  await eventually(() => aapl.find((b) => b.count >= 1), 10_000, 'an AAPL state after the first exp')
})

t.test('the SSE fallback authenticates with Authorization, not the URL', async (t) => {
  const p = await startTestPulse(t, { JWT_SECRET: TEST_JWT_SECRET })
  const urls: string[] = []
  const recordingFetch: typeof fetch = async (input, init) => { urls.push(String(input)); return await fetch(input, init) }
  const client = connect({ url: p.url, token: async () => await hsToken({ tickers: ['AAPL'] }), transports: ['sse'], fetch: recordingFetch })
  t.teardown(() => client.close())
  const got: Bucket[] = []
  client.subscribe('AAPL', '1m', (b) => got.push(b))
  await eventually(() => client.state === 'fallback' && urls.some((u) => u.includes('/api/v2/stream')) ? true : undefined, 10_000, 'event stream open')
  t.equal((await p.post([item('AAPL', 'sdk-sse')])).status, 202)
  await eventually(() => got.find((b) => b.count >= 1), 10_000, 'an AAPL state over SSE')
  t.notOk(urls.some((u) => /[?&](token|ticket)=/.test(u)), 'no credential in any URL')
})

import { randomBytes } from 'node:crypto'
import t from 'tap'
import { hsToken, TEST_JWT_SECRET } from '../helpers/jwt.js'
import { startTestPulse } from '../helpers/pulse.js'
import { sharedRedisServer } from '../helpers/shared-services.js'

/*
 * Access across the gateways of one cluster: a stream ticket issued by one gateway opens
 * a stream on another, exactly once however many gateways try it at the same moment; a
 * subject's history-read budget is shared by every gateway.
 */

async function status (url: string, init: RequestInit = {}): Promise<{ status: number, code: string | undefined, body: any }> {
  const controller = new AbortController()
  const res = await fetch(url, { ...init, signal: controller.signal })
  let body: any
  if (res.headers.get('content-type')?.includes('json') === true) body = await res.json()
  controller.abort()
  return { status: res.status, code: body?.error?.code, body }
}

t.test('tickets and per-subject read limits hold across two gateways', async (t) => {
  const redis = await sharedRedisServer()
  const env = { REDIS_URL: redis.url, PULSE_ENV: `acc${randomBytes(3).toString('hex')}`, TICKERS: 'AAPL,MSFT', ROLE: 'gateway', JWT_SECRET: TEST_JWT_SECRET, RATE_LIMIT_READ_SUBJECT: '3' }
  const a = await startTestPulse(t, env)
  const b = await startTestPulse(t, env)
  const token = await hsToken({ sub: 'cluster-reader', tickers: ['AAPL'] })
  const ticket = async (): Promise<string> => (await status(`${a.url}/api/v2/stream/tickets`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).body.ticket as string

  const first = await ticket()
  t.equal((await status(`${b.url}/api/v2/stream?tickers=AAPL&ticket=${first}`)).status, 200, 'issued by A, opens a stream on B')
  t.equal((await status(`${a.url}/api/v2/stream?tickers=AAPL&ticket=${first}`)).code, 'PULSE_ERR_UNAUTHORIZED', 'and is used up on A too')
  const entitled = await ticket()
  t.equal((await status(`${b.url}/api/v2/stream?tickers=MSFT&ticket=${entitled}`)).code, 'PULSE_ERR_NOT_ENTITLED', 'the ticket carries the entitlement to B')

  const races: number[] = []
  for (let round = 0; round < 5; round++) {
    const shared = await ticket()
    const tries = await Promise.all([a, b, a, b].map(async (gateway) => (await status(`${gateway.url}/api/v2/stream?tickers=AAPL&ticket=${shared}`)).status))
    races.push(tries.filter((s) => s === 200).length)
  }
  t.same(races, [1, 1, 1, 1, 1], 'four simultaneous redeems on two gateways: exactly one stream each time')

  const reads: number[] = []
  for (const gateway of [a, b, a, b]) reads.push((await status(`${gateway.url}/api/v2/timeseries/AAPL?resolution=1m`, { headers: { authorization: `Bearer ${token}` } })).status)
  t.same(reads, [200, 200, 200, 429], 'the subject\'s 3 reads a minute are counted over both gateways')
})

import { randomBytes } from 'node:crypto'
import t from 'tap'
import { startDynaliteProcess, startPulseProcess } from '../helpers/processes.js'
import { startRedisServer } from '../helpers/redis-server.js'

async function status (url: string, init: RequestInit = {}): Promise<{ status: number, code: string | undefined, headers: Headers }> {
  const controller = new AbortController()
  const res = await fetch(url, { ...init, signal: controller.signal })
  let code: string | undefined
  if (res.headers.get('content-type')?.includes('json') === true) code = ((await res.json()) as { error?: { code?: string } }).error?.code
  controller.abort()
  return { status: res.status, code, headers: res.headers }
}

t.test('cluster mode: the rate limit is shared by every gateway through Redis', async (t) => {
  const redis = await startRedisServer(t)
  const dynalite = await startDynaliteProcess(t)
  const env = { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: `a${randomBytes(3).toString('hex')}`, RATE_LIMIT_READ: '6' }
  const [a, b] = await Promise.all([startPulseProcess(t, { role: 'gateway', env }), startPulseProcess(t, { role: 'gateway', env })])
  const statuses: string[] = []
  for (let i = 0; i < 8; i++) {
    const gateway = i % 2 === 0 ? a : b
    statuses.push(`${i % 2 === 0 ? 'A' : 'B'}:${(await status(`${gateway.url}/api/v2/timeseries/AAPL?resolution=1m`)).status}`)
  }
  t.same(statuses, ['A:200', 'B:200', 'A:200', 'B:200', 'A:200', 'B:200', 'A:429', 'B:429'], 'six requests in all across two gateways, then 429 on both')
  t.comment(`alternating requests over two gateways: ${statuses.join(' ')}`)
  await redis.kill()
  const during = await status(`${a.url}/api/v2/timeseries/AAPL?resolution=1m`)
  t.not(during.status, 500, `with Redis down the limiter does not fail the request (${during.status})`)
})

import { randomBytes } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Redis } from 'ioredis'
import t from 'tap'
import WebSocket from 'ws'
import { RESOLUTIONS } from '../../shared/timeseries/resolutions.js'
import { startDynaliteProcess } from '../helpers/processes.js'
import { eventually, startTestPulse } from '../helpers/pulse.js'
import { startRedisServer } from '../helpers/redis-server.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const TICKERS = Array.from({ length: 250 }, (_, i) => `C${String(i).padStart(3, '0')}`)
const CONCURRENT = 100

async function heapAfterGc (): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed
}

/** A client that connects, subscribes to one series, waits for the confirmation and leaves. */
async function visit (url: string, ticker: string, resolution: string): Promise<void> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v2/ws`)
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.once('open', () => socket.send(JSON.stringify({ op: 'subscribe', tickers: [ticker], resolutions: [resolution] })))
      socket.on('message', (data) => { if (data.toString().includes('"subscribed"')) resolve() })
    })
  } finally {
    socket.terminate()
  }
}

t.test('churn: thousands of clients on distinct series leave no bus subscription and no memory behind', async (t) => {
  const redis = await startRedisServer(t)
  const dynalite = await startDynaliteProcess(t)
  const pulseEnv = `c${randomBytes(3).toString('hex')}`
  const gateway = await startTestPulse(t, {
    REDIS_URL: redis.url,
    DYNAMODB_ENDPOINT: dynalite.endpoint,
    PULSE_ENV: pulseEnv,
    ROLE: 'gateway',
    TICKERS: TICKERS.join(','),
    SUBSCRIPTION_LINGER_MS: '200'
  }, { drainMs: 0 })
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const channels = async (): Promise<number> => (await admin.pubsub('CHANNELS', `pulse:${pulseEnv}:ch:*`) as string[]).length

  const series = TICKERS.flatMap((ticker) => RESOLUTIONS.map((resolution) => [ticker, resolution] as const))
  // Warm the code paths, so the baseline is not the cost of first use.
  for (const [ticker, resolution] of series.slice(0, CONCURRENT)) await visit(gateway.url, ticker, resolution)
  await eventually(async () => await channels() === 0 ? true : undefined, 20_000, 'warm-up subscriptions to be released')
  const baseline = await heapAfterGc()

  let peak = 0
  for (let i = 0; i < series.length; i += CONCURRENT) {
    await Promise.all(series.slice(i, i + CONCURRENT).map(async ([ticker, resolution]) => await visit(gateway.url, ticker, resolution)))
    peak = Math.max(peak, await channels())
  }
  t.ok(peak > 0, `clients were subscribed while they watched (peak ${peak} channels)`)
  await eventually(async () => await channels() === 0 ? true : undefined, 30_000, 'every subscription to be released').catch(() => {})
  t.equal(await channels(), 0, `no bus subscription left after ${series.length} clients on distinct series`)
  t.equal(gateway.pulse.app?.streaming.stats().channels, 0, 'no channel actor left')
  const after = await heapAfterGc()
  t.comment(`heap after GC: baseline ${(baseline / 1048576).toFixed(1)} MB, after churn ${(after / 1048576).toFixed(1)} MB (${((after - baseline) / 1048576).toFixed(1)} MB)`)
  t.ok(after - baseline < 32 * 1048576, 'heap returns near its baseline (generous bound: 32 MB)')
})

/**
 * Gateway churn: a cluster-mode gateway (real redis-server and dynalite) while WebSocket
 * clients keep arriving, each subscribing to one of 2,000 distinct series (250 tickers × 8
 * resolutions) and leaving. Prints the gateway's heap (after a
 * full GC) and RSS before and after, and what it still holds: bus subscriptions, channel
 * actors, cached series and buckets. Bounded: `CHURN_MINUTES` (default 1; 10 for the full
 * run). Run: `npx tsx bench/gateway-churn.bench.ts`.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Redis } from 'ioredis'
import pino from 'pino'
import WebSocket from 'ws'
import { loadConfig } from '../shared/config/config.js'
import { RESOLUTIONS } from '../shared/timeseries/resolutions.js'
import { startPulse } from '../services/runtime.js'
import { startDynaliteProcess } from '../test/helpers/processes.js'
import { startRedisServer } from '../test/helpers/redis-server.js'
import { printTable } from './table.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const MINUTES = Number(process.env.CHURN_MINUTES ?? 1)
const CONCURRENT = 100
const LINGER_MS = 1000
const TICKERS = Array.from({ length: 250 }, (_, i) => `C${String(i).padStart(3, '0')}`)
const SERIES = TICKERS.flatMap((ticker) => RESOLUTIONS.map((resolution) => [ticker, resolution] as const))

async function memory (): Promise<{ heapMb: number, rssMb: number }> {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  const { heapUsed, rss } = process.memoryUsage()
  return { heapMb: Math.round(heapUsed / 104857.6) / 10, rssMb: Math.round(rss / 104857.6) / 10 }
}

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

async function main (): Promise<void> {
  const teardowns: Array<() => unknown> = []
  const t = { teardown: (fn: () => unknown) => { teardowns.unshift(fn) } }
  try {
    const redis = await startRedisServer(t)
    const dynalite = await startDynaliteProcess(t)
    const env = `churn${randomBytes(3).toString('hex')}`
    const pulse = await startPulse(loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      ROLE: 'gateway',
      REDIS_URL: redis.url,
      DYNAMODB_ENDPOINT: dynalite.endpoint,
      PULSE_ENV: env,
      TICKERS: TICKERS.join(','),
      INGEST_API_KEY: 'bench-ingest-key-0123456789',
      RATE_LIMIT_INGEST: '0',
      RATE_LIMIT_READ: '0',
      SUBSCRIPTION_LINGER_MS: String(LINGER_MS)
    }), { logger: pino({ level: 'silent' }), drainMs: 0 })
    t.teardown(async () => await pulse.close())
    const url = pulse.url as string
    const admin = new Redis(redis.url)
    t.teardown(() => admin.disconnect())
    const channels = async (): Promise<number> => (await admin.pubsub('CHANNELS', `pulse:${env}:ch:*`) as string[]).length

    for (const [ticker, resolution] of SERIES.slice(0, CONCURRENT)) await visit(url, ticker, resolution)
    const before = await memory()
    const deadline = Date.now() + MINUTES * 60_000
    let clients = 0
    let peakChannels = 0
    while (Date.now() < deadline) {
      for (let i = 0; i < SERIES.length && Date.now() < deadline; i += CONCURRENT) {
        await Promise.all(SERIES.slice(i, i + CONCURRENT).map(async ([ticker, resolution]) => await visit(url, ticker, resolution)))
        clients += Math.min(CONCURRENT, SERIES.length - i)
        peakChannels = Math.max(peakChannels, await channels())
      }
    }
    const cache = pulse.app?.pulse.cache
    await sleep(LINGER_MS * 2)
    const after = await memory()
    printTable(`Gateway churn: ${clients} clients over ${MINUTES} min, each on one of ${SERIES.length} series (subscribe, then leave)`, [
      { when: 'before', 'heap MB': before.heapMb, 'RSS MB': before.rssMb, 'bus channels': '', 'cached series': '', 'cached buckets': '' },
      { when: 'after', 'heap MB': after.heapMb, 'RSS MB': after.rssMb, 'bus channels': await channels(), 'cached series': cache?.size ?? 0, 'cached buckets': cache?.bucketCount ?? 0 }
    ])
    console.log(`peak bus channels during churn: ${peakChannels}; channel actors after: ${pulse.app?.streaming.stats().channels ?? 0}`)
  } finally {
    for (const fn of teardowns) await fn()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main()

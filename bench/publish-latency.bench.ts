import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { RedisBus } from '../shared/adapters/redis/index.js'
import { latencyHistogram, ms, printTable } from './table.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const KEY = 'bench-ingest-key-0123456789'

async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

function start (command: string[], env: Record<string, string>): ReturnType<typeof spawn> {
  return spawn(command[0] as string, command.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, stdio: 'ignore' })
}

async function waitFor (check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check().catch(() => false)) return
    await sleep(50)
  }
  throw new Error('did not start')
}

/**
 * Cluster mode, time from `POST /api/v2/items` answering 202 to the changed bucket's
 * publish on Redis pub/sub: a real redis-server, dynalite, one gateway and one worker
 * process; the bench listens on the channel as a gateway would.
 */
export async function main (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-bench-'))
  const [redisPort, dynamoPort, gatewayPort] = [await freePort(), await freePort(), await freePort()]
  const children = [
    start(['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {}),
    start([process.execPath, 'node_modules/dynalite/cli.js', '--port', String(dynamoPort), '--createTableMs', '0'], {})
  ]
  const env = {
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    DYNAMODB_ENDPOINT: `http://127.0.0.1:${dynamoPort}`,
    PULSE_ENV: 'bench',
    INGEST_API_KEY: KEY,
    RATE_LIMIT_INGEST: '0',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true'
  }
  try {
    await sleep(500)
    children.push(start([process.execPath, '--import', 'tsx', 'services/main.ts'], { ...env, ROLE: 'worker', PORT: String(await freePort()) }))
    children.push(start([process.execPath, '--import', 'tsx', 'services/main.ts'], { ...env, ROLE: 'gateway', PORT: String(gatewayPort) }))
    const url = `http://127.0.0.1:${gatewayPort}`
    await waitFor(async () => (await fetch(`${url}/readyz`)).ok)
    const bus = new RedisBus({ url: env.REDIS_URL, env: 'bench' })
    // Posts go one at a time and each changes AAPL's 1m bucket once: the n-th publish answers the n-th post.
    const published: number[] = []
    await bus.subscribe('AAPL#1m', () => { published.push(performance.timeOrigin + performance.now()) })
    const histogram = latencyHistogram()
    const post = async (i: number): Promise<number> => {
      const res = await fetch(`${url}/api/v2/items`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
        body: JSON.stringify([{ id: `p${i}`, ticker: 'AAPL', timestamp: new Date().toISOString(), score: 0.1, source: 'tiingo' }])
      })
      if (res.status !== 202) throw new Error(`status ${res.status}`)
      return performance.timeOrigin + performance.now()
    }
    // Warm-up: connections, scripts, the first loads of each bucket.
    for (let i = 0; i < 50; i++) await post(-1 - i)
    await sleep(1500)
    const runs = 500
    for (let i = 0; i < runs; i++) {
      const before = published.length
      const acceptedAt = await post(i)
      const deadline = Date.now() + 5000
      while (published.length === before && Date.now() < deadline) await sleep(0.2)
      const at = published[before]
      // A publish can beat the 202 to the client: count it as zero, not negative.
      if (at !== undefined) histogram.recordValue(Math.max(1, Math.round((at - acceptedAt) * 1000)))
      // Spread the posts so each is measured alone, not behind a queue of others.
      await sleep(5)
    }
    printTable('Cluster mode: 202 → publish of the changed bucket (Redis pub/sub)', [
      { samples: histogram.totalCount, 'p50 ms': ms(histogram, 50), 'p99 ms': ms(histogram, 99), 'max ms': (histogram.maxValue / 1000).toFixed(3) }
    ])
    await bus.close()
  } finally {
    for (const child of children) child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main()

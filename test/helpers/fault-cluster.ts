import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { createDynamoClients } from '../../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../../shared/adapters/dynamo/dynamo-archive.js'
import { tableName } from '../../shared/adapters/dynamo/table.js'
import { type RedisClusterOptions, RedisHotState } from '../../shared/adapters/redis/index.js'
import type { Bucket, ScoredItem } from '../../shared/timeseries/bucket.js'
import { labelFor } from '../../shared/timeseries/bucket.js'
import { differences, expectedBuckets } from './expected.js'
import { TEST_INGEST_KEY } from './pulse.js'
import { type ManagedProcess, startDynaliteProcess, startPulseProcess, type Teardown } from './processes.js'
import { type RedisServer, startRedisServer } from './redis-server.js'

/** A dynalite and Pulse processes on one Redis (or Redis Cluster), sharing one random `PULSE_ENV`, all owned by one test. */
export interface PulseOnRedis {
  dynalite: ManagedProcess & { endpoint: string }
  env: Record<string, string>
  hot: RedisHotState
  archive: DynamoArchive
  gateways: ManagedProcess[]
  workers: ManagedProcess[]
}

/** {@link PulseOnRedis} with the Redis it started or was given. */
export interface FaultCluster extends PulseOnRedis {
  redis: RedisServer
}

export interface PulseOnRedisOptions {
  tickers: string[]
  gateways: number
  workers: number
  env?: Record<string, string>
  /** The URL Pulse and the checks use. */
  redisUrl: string
  /** Set: `redisUrl` is a seed node of a Redis Cluster (`REDIS_CLUSTER=1`, and `REDIS_CLUSTER_NAT_MAP` from `natMap`). */
  redisCluster?: RedisClusterOptions
}

export interface FaultClusterOptions extends Omit<PulseOnRedisOptions, 'redisUrl' | 'redisCluster'> {
  aof?: boolean
  /** A Redis the test started (default: one of its own), and the URL Pulse and the checks use (default: its own). */
  redis?: RedisServer
  redisUrl?: string
}

/**
 * Starts the pieces; batches a killed worker held are retried after `QUEUE_LOCK_MS` (2 s here,
 * 30 s in production), and buckets a cut-short flush held after `FLUSH_LEASE_MS` (4 s here,
 * 60 s in production).
 */
export async function startFaultCluster (t: Teardown, options: FaultClusterOptions): Promise<FaultCluster> {
  const redis = options.redis ?? await startRedisServer(t, { aof: options.aof ?? false })
  return { redis, ...await startPulseOnRedis(t, { ...options, redisUrl: options.redisUrl ?? redis.url }) }
}

/** {@link startFaultCluster} on a Redis or Redis Cluster the caller started. */
export async function startPulseOnRedis (t: Teardown, options: PulseOnRedisOptions): Promise<PulseOnRedis> {
  const { redisUrl, redisCluster } = options
  const dynalite = await startDynaliteProcess(t)
  const clusterEnv: Record<string, string> = redisCluster === undefined ? {} : { REDIS_CLUSTER: '1' }
  if (redisCluster?.natMap !== undefined) {
    clusterEnv.REDIS_CLUSTER_NAT_MAP = Object.entries(redisCluster.natMap).map(([announced, to]) => `${announced}=${to.host}:${to.port}`).join(',')
  }
  const env = {
    ...clusterEnv,
    REDIS_URL: redisUrl,
    DYNAMODB_ENDPOINT: dynalite.endpoint,
    PULSE_ENV: `f${randomBytes(3).toString('hex')}`,
    TICKERS: options.tickers.join(','),
    FLUSH_INTERVAL_MS: '500',
    QUEUE_LOCK_MS: '2000',
    FLUSH_LEASE_MS: '4000',
    ...options.env
  }
  const [gateways, workers] = await Promise.all([
    Promise.all(Array.from({ length: options.gateways }, async () => await startPulseProcess(t, { role: 'gateway', env }))),
    Promise.all(Array.from({ length: options.workers }, async () => await startPulseProcess(t, { role: 'worker', env })))
  ])
  const hot = new RedisHotState({ connection: redisUrl, cluster: redisCluster, env: env.PULSE_ENV, dedupeWindowMs: 86_400_000 })
  t.teardown(async () => await hot.close())
  const { doc, client } = createDynamoClients({ region: 'us-east-1', endpoint: dynalite.endpoint })
  t.teardown(() => client.destroy())
  const archive = new DynamoArchive({ client: doc, tableName: tableName(env.PULSE_ENV) })
  return { dynalite, env, hot, archive, gateways, workers }
}

/** `count` items spread over the last two hours (many late for their 1m–1h buckets), ids prefixed to keep phases apart. */
export function makeItems (prefix: string, count: number, tickers: readonly string[], now: number, spanSeconds = 7200): ScoredItem[] {
  return Array.from({ length: count }, (_, i) => {
    const score = Math.round(Math.sin(i * 7.3 + prefix.length) * 1e6) / 1e6
    return {
      id: `${prefix}${i}`,
      ticker: tickers[i % tickers.length] as string,
      ts: now - ((i * 7919) % spanSeconds) * 1000,
      score,
      label: labelFor(score),
      source: ['tiingo', 'finnhub', 'newsapi'][i % 3] as string
    }
  })
}

/** The item as a producer sends it. */
export function wire (item: ScoredItem): Record<string, unknown> {
  return { id: item.id, ticker: item.ticker, timestamp: new Date(item.ts).toISOString(), score: item.score, source: item.source }
}

/** POSTs one batch; resolves with the status (no retry: the caller decides what a refusal means). */
export async function postOnce (gateway: ManagedProcess, items: readonly ScoredItem[]): Promise<number> {
  const res = await fetch(`${gateway.url}/api/v2/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_INGEST_KEY}` },
    body: JSON.stringify(items.map(wire))
  }).catch(() => undefined)
  await res?.arrayBuffer()
  return res?.status ?? 0
}

/**
 * POSTs until a 202, as a producer retries a refused batch. Returns how many tries it
 * took. A batch is only ever counted as accepted when a 202 came back.
 */
export async function postUntilAccepted (gateway: ManagedProcess, items: readonly ScoredItem[], ms = 30_000): Promise<number> {
  const deadline = Date.now() + ms
  for (let tries = 1; ; tries++) {
    const status = await postOnce(gateway, items)
    if (status === 202) return tries
    if (Date.now() > deadline) throw new Error(`batch not accepted within ${ms} ms (last status ${status})`)
    await sleep(200)
  }
}

/** Problems (empty: none) between stored buckets and the domain fold of `items`. */
export function compare (items: readonly ScoredItem[], stored: readonly Bucket[]): { problems: string[], buckets: number } {
  const expected = expectedBuckets(items, Date.now())
  const byKey = new Map(stored.map((b) => [`${b.ticker}#${b.resolution}@${b.start}`, b]))
  const problems = [...expected].flatMap(([key, e]) => differences(byKey.get(key), e.aggregate).map((p) => `${key}: ${p}`))
  return { problems, buckets: expected.size }
}

/** Every bucket the fold of `items` makes, as stored in Redis (hot) and DynamoDB (archive). */
export async function readBoth (cluster: PulseOnRedis, items: readonly ScoredItem[]): Promise<{ hot: Bucket[], archive: Bucket[] }> {
  const refs = [...expectedBuckets(items, Date.now()).values()].map((e) => e.ref)
  return { hot: await cluster.hot.get(refs), archive: await cluster.archive.get(refs, Date.now()) }
}

/** Polls until the hot state equals the fold of `items`; returns the last problems seen. */
export async function waitForHot (cluster: PulseOnRedis, items: readonly ScoredItem[], ms: number): Promise<{ problems: string[], buckets: number }> {
  const deadline = Date.now() + ms
  for (;;) {
    const refs = [...expectedBuckets(items, Date.now()).values()].map((e) => e.ref)
    const result = compare(items, await cluster.hot.get(refs).catch(() => []))
    if (result.problems.length === 0 || Date.now() > deadline) return result
    await sleep(250)
  }
}

/** Polls until the dirty set is empty and DynamoDB equals the fold of `items`. */
export async function waitForArchive (cluster: PulseOnRedis, items: readonly ScoredItem[], ms: number): Promise<{ problems: string[], buckets: number }> {
  const deadline = Date.now() + ms
  for (;;) {
    const dirty = await cluster.hot.dirtyCount().catch(() => -1)
    const result = compare(items, await cluster.archive.get([...expectedBuckets(items, Date.now()).values()].map((e) => e.ref), Date.now()).catch(() => []))
    if ((dirty === 0 && result.problems.length === 0) || Date.now() > deadline) return result
    await sleep(250)
  }
}

/** Resident memory of a process in bytes (Linux), or NaN. */
export async function rssOf (pid: number | undefined): Promise<number> {
  if (pid === undefined) return NaN
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]
  return kb === undefined ? NaN : Number(kb) * 1024
}

/** Polls `GET /readyz` until it answers 200; returns the milliseconds it took. */
export async function waitReady (gateway: ManagedProcess, ms = 30_000): Promise<number> {
  const start = Date.now()
  while (Date.now() - start < ms) {
    const status = await fetch(`${gateway.url}/readyz`).then(async (r) => { await r.arrayBuffer(); return r.status }).catch(() => 0)
    if (status === 200) return Date.now() - start
    await sleep(100)
  }
  throw new Error(`${gateway.url} not ready within ${ms} ms`)
}

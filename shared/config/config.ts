import { type Static, Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { parseFaults } from '../fault-points.js'
import { TICKER_PATTERN } from '../timeseries/index.js'

export const DEFAULT_TICKERS = ['AAPL', 'MSFT', 'GOOGL', 'AMZN', 'NVDA', 'META', 'TSLA', 'JPM', 'V', 'JNJ', 'WMT', 'XOM', 'UNH']

const Flag = Type.Union([Type.Literal('0'), Type.Literal('1'), Type.Literal('true'), Type.Literal('false')])
const Count = Type.String({ pattern: '^\\d{1,9}$' })

/** The environment Pulse reads (SPEC §6), all strings as the environment gives them. */
export const EnvSchema = Type.Object({
  PORT: Type.Optional(Count),
  HOST: Type.Optional(Type.String({ minLength: 1 })),
  ROLE: Type.Optional(Type.Union([Type.Literal('all'), Type.Literal('gateway'), Type.Literal('worker')])),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_CLUSTER: Type.Optional(Flag),
  REDIS_CLUSTER_NAT_MAP: Type.Optional(Type.String({ minLength: 1 })),
  INGEST_SHARDS: Type.Optional(Count),
  DYNAMODB_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  AWS_REGION: Type.Optional(Type.String({ minLength: 1 })),
  PULSE_ENV: Type.Optional(Type.String({ pattern: '^[a-z0-9_-]{1,32}$' })),
  DATA_DIR: Type.Optional(Type.String({ minLength: 1 })),
  TICKERS: Type.Optional(Type.String({ minLength: 1 })),
  INGEST_API_KEY: Type.Optional(Type.String({ minLength: 16 })),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 1 })),
  READ_TOKEN: Type.Optional(Type.String({ minLength: 1 })),
  ALLOWED_ORIGINS: Type.Optional(Type.String()),
  MAX_CONNECTIONS: Type.Optional(Count),
  DEBOUNCE_MS: Type.Optional(Count),
  MAX_BUFFERED_MB: Type.Optional(Count),
  HEARTBEAT_MS: Type.Optional(Count),
  RATE_LIMIT_INGEST: Type.Optional(Count),
  RATE_LIMIT_READ: Type.Optional(Count),
  DEDUPE_WINDOW: Type.Optional(Type.String({ pattern: '^\\d{1,6}(ms|s|m|h|d)$' })),
  FLUSH_INTERVAL_MS: Type.Optional(Count),
  FLUSH_LEASE_MS: Type.Optional(Count),
  QUEUE_LOCK_MS: Type.Optional(Count),
  INGEST_DURABILITY: Type.Optional(Type.Union([Type.Literal('fsync'), Type.Literal('replica'), Type.Literal('none')])),
  INGEST_REPLICA_TIMEOUT_MS: Type.Optional(Count),
  REQUEST_TIMEOUT_MS: Type.Optional(Count),
  DRAIN_MS: Type.Optional(Count),
  SUBSCRIPTION_LINGER_MS: Type.Optional(Count),
  SERIES_CACHE_MAX_BUCKETS: Type.Optional(Count),
  DEMO_FEED: Type.Optional(Flag),
  LOG_LEVEL: Type.Optional(Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)))),
  GATEWAY_ENGINE: Type.Optional(Type.Union([Type.Literal('fastify'), Type.Literal('uws')])),
  PULSE_FAULTS: Type.Optional(Type.String())
})

export type Env = Static<typeof EnvSchema>

/** Typed configuration, validated once at start and passed to everything as a parameter. */
export interface Config {
  port: number
  host: string
  role: 'all' | 'gateway' | 'worker'
  /** Set: cluster mode (Redis + BullMQ + DynamoDB). Unset: embedded mode. */
  redisUrl: string | undefined
  /** Set (`REDIS_CLUSTER=1`): `redisUrl` is a seed node of a Redis Cluster, reached through `natMap` when given. */
  redisCluster: { natMap?: Record<string, { host: string, port: number }> } | undefined
  /** Number of ingest queues a batch is split over by ticker (`INGEST_SHARDS`). */
  ingestShards: number
  dynamodbEndpoint: string | undefined
  awsRegion: string
  env: string
  dataDir: string
  tickers: string[]
  /** Accepted ingest keys (comma-separated in the environment, for rotation). Empty: generate one. */
  ingestApiKeys: string[]
  metricsToken: string | undefined
  readToken: string | undefined
  /** Empty: any origin. */
  allowedOrigins: string[]
  maxConnections: number
  debounceMs: number
  /** Most bytes all stream connections of a gateway may buffer together; over it the slowest are cut. */
  maxBufferedBytes: number
  heartbeatMs: number
  rateLimitIngest: number
  rateLimitRead: number
  dedupeWindowMs: number
  flushIntervalMs: number
  /** How long a worker's write-behind holds the buckets it took before another worker may take them (cluster mode). */
  flushLeaseMs: number
  /** How long a worker's claim on an ingest batch lasts without renewal; a crashed worker's batch is retried after it. */
  queueLockMs: number
  /**
   * Cluster mode: what a 202 waits for (see README, "Ingest durability"). `fsync` relies on
   * Redis `appendfsync always`, `replica` on a replica confirming the job (`WAIT`), `none`
   * on neither.
   */
  ingestDurability: IngestDurability
  /** How long `replica` durability waits for a replica before the producer gets a 503. */
  ingestReplicaTimeoutMs: number
  /** Longest time a client may take to send a whole request (slow-request defence). */
  requestTimeoutMs: number
  /** How long a stopping gateway keeps answering 503 before it closes; unset: 5 s in cluster mode, 0 embedded. */
  drainMs: number | undefined
  /** How long a gateway keeps a series' bus subscription after its last watcher left. */
  subscriptionLingerMs: number
  /** Buckets the gateway's series cache may hold over all series (least recently used go first). */
  seriesCacheMaxBuckets: number
  demoFeed: boolean
  logLevel: string
  gatewayEngine: 'fastify' | 'uws'
}

export type IngestDurability = 'fsync' | 'replica' | 'none'

/** Invalid configuration: the message names the variable. */
export class ConfigError extends Error {
  constructor (readonly variable: string, message: string) {
    super(`${variable}: ${message}`)
    this.name = 'ConfigError'
  }
}

const envCheck = TypeCompiler.Compile(EnvSchema)
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

export function parseDuration (text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text)
  if (match === null) throw new Error(`not a duration: ${text}`)
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number)
}

function list (text: string | undefined): string[] {
  return (text ?? '').split(/[\s,]+/).map((s) => s.trim()).filter((s) => s.length > 0)
}

/** Most ingest shards: each is a BullMQ queue every worker keeps a blocking connection to. */
export const MAX_INGEST_SHARDS = 64
/** Ingest shards on a Redis Cluster when `INGEST_SHARDS` is unset: spread over the masters. */
export const DEFAULT_CLUSTER_INGEST_SHARDS = 4

/** `announced-host:port=reachable-host:port,...` (`REDIS_CLUSTER_NAT_MAP`). */
function parseNatMap (text: string): Record<string, { host: string, port: number }> {
  const map: Record<string, { host: string, port: number }> = {}
  for (const entry of list(text)) {
    const match = /^([^\s=]+:\d{1,5})=([^\s=:]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(entry)
    if (match === null) throw new ConfigError('REDIS_CLUSTER_NAT_MAP', `${JSON.stringify(entry)} is not announced-host:port=reachable-host:port`)
    map[match[1] as string] = { host: (match[2] as string).replace(/^\[|\]$/g, ''), port: Number(match[3]) }
  }
  return map
}

function flag (text: string | undefined, fallback: boolean): boolean {
  if (text === undefined) return fallback
  return text === '1' || text === 'true'
}

/** Reads and validates the environment; throws {@link ConfigError} naming the first bad variable. */
export function loadConfig (source: Record<string, string | undefined> = process.env): Config {
  const known = Object.keys(EnvSchema.properties)
  const env: Record<string, string> = {}
  for (const key of known) {
    const value = source[key]
    if (value !== undefined && value !== '') env[key] = value
  }
  const first = envCheck.Errors(env).First()
  if (first !== undefined) {
    const variable = first.path.replace(/^\//, '') || 'environment'
    throw new ConfigError(variable, `${first.message} (got ${JSON.stringify(env[variable])})`)
  }
  const e = env as Env
  const tickers = e.TICKERS === undefined ? DEFAULT_TICKERS : list(e.TICKERS)
  const tickerPattern = new RegExp(TICKER_PATTERN)
  const badTicker = tickers.find((t) => !tickerPattern.test(t))
  if (badTicker !== undefined) throw new ConfigError('TICKERS', `${JSON.stringify(badTicker)} does not match ${TICKER_PATTERN}`)
  if (tickers.length === 0) throw new ConfigError('TICKERS', 'no tickers')
  const keys = list(e.INGEST_API_KEY)
  if (keys.some((k) => k.length < 16)) throw new ConfigError('INGEST_API_KEY', 'each key needs at least 16 characters')
  const dedupeWindowMs = parseDuration(e.DEDUPE_WINDOW ?? '24h')
  if (dedupeWindowMs < 24 * 3_600_000) throw new ConfigError('DEDUPE_WINDOW', 'must be at least 24h')
  const port = Number(e.PORT ?? 3000)
  if (port > 65535) throw new ConfigError('PORT', `${port} is not a port`)
  const redisUrl = e.REDIS_URL
  const clustered = flag(e.REDIS_CLUSTER, false)
  if (clustered && redisUrl === undefined) throw new ConfigError('REDIS_CLUSTER', 'needs REDIS_URL, the address of one node of the cluster')
  if (clustered && /^\/?[1-9]/.test(new URL(redisUrl as string).pathname)) throw new ConfigError('REDIS_URL', 'a Redis Cluster has no numbered databases: drop the path')
  if (!clustered && e.REDIS_CLUSTER_NAT_MAP !== undefined) throw new ConfigError('REDIS_CLUSTER_NAT_MAP', 'only applies with REDIS_CLUSTER=1')
  const redisCluster = clustered ? (e.REDIS_CLUSTER_NAT_MAP === undefined ? {} : { natMap: parseNatMap(e.REDIS_CLUSTER_NAT_MAP) }) : undefined
  const ingestShards = Number(e.INGEST_SHARDS ?? (clustered ? DEFAULT_CLUSTER_INGEST_SHARDS : 1))
  if (ingestShards < 1 || ingestShards > MAX_INGEST_SHARDS) throw new ConfigError('INGEST_SHARDS', `must be 1 to ${MAX_INGEST_SHARDS}`)
  const flushLeaseMs = Number(e.FLUSH_LEASE_MS ?? 60_000)
  if (flushLeaseMs < 1000) throw new ConfigError('FLUSH_LEASE_MS', 'must be at least 1000')
  const queueLockMs = Number(e.QUEUE_LOCK_MS ?? 30_000)
  if (queueLockMs < 1000) throw new ConfigError('QUEUE_LOCK_MS', 'must be at least 1000')
  const ingestDurability = e.INGEST_DURABILITY ?? 'fsync'
  if (ingestDurability === 'replica' && redisUrl === undefined) {
    throw new ConfigError('INGEST_DURABILITY', 'replica needs REDIS_URL (cluster mode); the embedded journal always fsyncs')
  }
  if (ingestDurability === 'replica' && clustered) {
    // WAIT has no key, so a cluster client cannot send it to the master that holds a shard's job.
    throw new ConfigError('INGEST_DURABILITY', 'replica works with a single Redis primary and its replicas; on a Redis Cluster use fsync, with every master running appendfsync always')
  }
  const ingestReplicaTimeoutMs = Number(e.INGEST_REPLICA_TIMEOUT_MS ?? 2000)
  if (ingestReplicaTimeoutMs < 1 || ingestReplicaTimeoutMs > 60_000) throw new ConfigError('INGEST_REPLICA_TIMEOUT_MS', 'must be between 1 and 60000')
  const requestTimeoutMs = Number(e.REQUEST_TIMEOUT_MS ?? 30_000)
  if (requestTimeoutMs < 1000) throw new ConfigError('REQUEST_TIMEOUT_MS', 'must be at least 1000')
  const seriesCacheMaxBuckets = Number(e.SERIES_CACHE_MAX_BUCKETS ?? 200_000)
  // One series' retained window is at most 360 buckets (1m over 6 h), plus the edges.
  if (seriesCacheMaxBuckets < 1000) throw new ConfigError('SERIES_CACHE_MAX_BUCKETS', 'must be at least 1000 (one series window is up to 362 buckets)')
  const maxBufferedMb = Number(e.MAX_BUFFERED_MB ?? 256)
  if (maxBufferedMb < 1) throw new ConfigError('MAX_BUFFERED_MB', 'must be at least 1')
  if (e.PULSE_FAULTS !== undefined) {
    if (source.NODE_ENV === 'production') throw new ConfigError('PULSE_FAULTS', 'fault injection is for tests and is refused when NODE_ENV=production')
    try {
      parseFaults(e.PULSE_FAULTS)
    } catch (err) {
      throw new ConfigError('PULSE_FAULTS', (err as Error).message.replace(/^PULSE_FAULTS: /, ''))
    }
  }
  return {
    port,
    host: e.HOST ?? '0.0.0.0',
    role: e.ROLE ?? 'all',
    redisUrl,
    redisCluster,
    ingestShards,
    dynamodbEndpoint: e.DYNAMODB_ENDPOINT,
    awsRegion: e.AWS_REGION ?? 'us-east-1',
    env: e.PULSE_ENV ?? 'dev',
    dataDir: e.DATA_DIR ?? './data',
    tickers: [...new Set(tickers)],
    ingestApiKeys: keys,
    metricsToken: e.METRICS_TOKEN,
    readToken: e.READ_TOKEN,
    allowedOrigins: list(e.ALLOWED_ORIGINS),
    maxConnections: Number(e.MAX_CONNECTIONS ?? 10_000),
    debounceMs: Number(e.DEBOUNCE_MS ?? 100),
    maxBufferedBytes: maxBufferedMb * 1024 * 1024,
    heartbeatMs: Number(e.HEARTBEAT_MS ?? 15_000),
    rateLimitIngest: Number(e.RATE_LIMIT_INGEST ?? 600),
    rateLimitRead: Number(e.RATE_LIMIT_READ ?? 6000),
    dedupeWindowMs,
    flushIntervalMs: Number(e.FLUSH_INTERVAL_MS ?? 1000),
    flushLeaseMs,
    queueLockMs,
    ingestDurability,
    ingestReplicaTimeoutMs,
    requestTimeoutMs,
    drainMs: e.DRAIN_MS === undefined ? undefined : Number(e.DRAIN_MS),
    subscriptionLingerMs: Number(e.SUBSCRIPTION_LINGER_MS ?? 5000),
    seriesCacheMaxBuckets,
    demoFeed: flag(e.DEMO_FEED, redisUrl === undefined),
    logLevel: e.LOG_LEVEL ?? 'info',
    gatewayEngine: e.GATEWAY_ENGINE ?? 'fastify'
  }
}

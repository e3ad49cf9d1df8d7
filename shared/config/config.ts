import { type Static, type TInteger, Type } from '@sinclair/typebox'
import envSchema from 'env-schema'
import { parseFaults } from '../fault-points.js'
import { TICKER_PATTERN } from '../timeseries/item.js'

export const DEFAULT_TICKERS = ['AAPL', 'MSFT', 'GOOGL', 'AMZN', 'NVDA', 'META', 'TSLA', 'JPM', 'V', 'JNJ', 'WMT', 'XOM', 'UNH']

const Flag = Type.Union([Type.Literal('0'), Type.Literal('1'), Type.Literal('true'), Type.Literal('false')])

/**
 * A whole number read from the environment (the schema validator converts the text), with
 * the smallest and largest values that make sense: a 0 where it would make a busy loop or
 * a process that refuses everything is refused at start.
 */
function Whole (minimum: number, maximum: number, defaultValue?: number): TInteger {
  return Type.Integer({ minimum, maximum, ...(defaultValue === undefined ? {} : { default: defaultValue }) })
}

/** Most ingest shards: each is a BullMQ queue every worker keeps a blocking connection to. */
export const MAX_INGEST_SHARDS = 64
/** Ingest shards on a Redis Cluster when `INGEST_SHARDS` is unset: spread over the masters. */
export const DEFAULT_CLUSTER_INGEST_SHARDS = 4

/** Largest value any millisecond setting takes: a day. */
const DAY_MS = 86_400_000

/**
 * What an operator sets (SPEC §6 and the README's configuration table): where Pulse runs,
 * what it connects to, who may use it and the limits it enforces.
 */
export const OperatorEnvSchema = Type.Object({
  PORT: Whole(0, 65535, 3000),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0' }),
  ROLE: Type.Union([Type.Literal('all'), Type.Literal('gateway'), Type.Literal('worker')], { default: 'all' }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_CLUSTER: Type.Optional(Flag),
  REDIS_CLUSTER_NAT_MAP: Type.Optional(Type.String({ minLength: 1 })),
  /** Set on managed Redis services that hide `CONFIG`: the operator vouches for `maxmemory-policy noeviction`. */
  REDIS_EVICTION_CHECK: Type.Union([Type.Literal('on'), Type.Literal('skip')], { default: 'on' }),
  INGEST_SHARDS: Type.Optional(Whole(1, MAX_INGEST_SHARDS)),
  DYNAMODB_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  AWS_REGION: Type.String({ minLength: 1, default: 'us-east-1' }),
  PULSE_ENV: Type.String({ pattern: '^[a-z0-9_-]{1,32}$', default: 'dev' }),
  DATA_DIR: Type.String({ minLength: 1, default: './data' }),
  TICKERS: Type.Optional(Type.String({ minLength: 1 })),
  INGEST_API_KEY: Type.Optional(Type.String({ minLength: 16 })),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 1 })),
  /** Bearer token of the admin API (adding and retiring tickers); unset: the admin API answers 404. */
  ADMIN_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  READ_TOKEN: Type.Optional(Type.String({ minLength: 1 })),
  /** HS256 secret of reader JWTs (at least 32 bytes, as RFC 7518 asks of an HS256 key). */
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  /** JSON Web Key Set of RS256/ES256 reader JWTs, fetched, cached and refetched on an unknown `kid`. */
  JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  /** Streams one JWT subject may hold open on one gateway; 0 turns the limit off. */
  SUBJECT_MAX_CONNECTIONS: Whole(0, 10_000_000, 20),
  /** Series one JWT subject may watch over all its streams on one gateway; 0 turns the limit off. */
  SUBJECT_MAX_SUBSCRIPTIONS: Whole(0, 100_000_000, 1000),
  /** Streams one client IP may hold open on one gateway; 0 (the default) turns the limit off. */
  IP_MAX_CONNECTIONS: Whole(0, 10_000_000, 0),
  /** Series one client IP may watch over all its streams on one gateway; 0 (the default) turns the limit off. */
  IP_MAX_SUBSCRIPTIONS: Whole(0, 100_000_000, 0),
  /** History reads per minute per JWT subject (shared by every gateway in cluster mode); 0 turns the limit off. */
  RATE_LIMIT_READ_SUBJECT: Whole(0, 100_000_000, 3000),
  ALLOWED_ORIGINS: Type.Optional(Type.String()),
  MAX_CONNECTIONS: Whole(1, 10_000_000, 10_000),
  DEBOUNCE_MS: Whole(10, 60_000, 100),
  HEARTBEAT_MS: Whole(100, DAY_MS, 15_000),
  /** Requests per minute per IP; 0 turns the limit off. */
  RATE_LIMIT_INGEST: Whole(0, 100_000_000, 600),
  RATE_LIMIT_READ: Whole(0, 100_000_000, 6000),
  DEDUPE_WINDOW: Type.String({ pattern: '^\\d{1,6}(ms|s|m|h|d)$', default: '24h' }),
  INGEST_DURABILITY: Type.Union([Type.Literal('fsync'), Type.Literal('replica'), Type.Literal('none')], { default: 'fsync' }),
  /** Items accepted and not yet folded past which ingest answers 503 (all gateways of a queue together). */
  INGEST_BACKLOG_MAX_ITEMS: Whole(1000, 1_000_000_000, 500_000),
  /** Likewise in megabytes of queued batches. */
  INGEST_BACKLOG_MAX_MB: Whole(1, 1_000_000, 256),
  /** How long a stopping gateway fails readiness and answers 503 before it closes; unset: 10 s in cluster mode, 0 embedded. */
  DRAIN_MS: Type.Optional(Whole(0, 600_000)),
  DEMO_FEED: Type.Optional(Flag),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  GATEWAY_ENGINE: Type.Union([Type.Literal('fastify'), Type.Literal('uws')], { default: 'fastify' })
})

/**
 * Internal tuning knobs: their defaults fit every deployment we know; they exist for tests,
 * benchmarks and the rare operator who measured a reason to move one.
 */
export const TuningEnvSchema = Type.Object({
  FLUSH_INTERVAL_MS: Whole(50, 3_600_000, 1000),
  FLUSH_LEASE_MS: Whole(1000, DAY_MS, 60_000),
  QUEUE_LOCK_MS: Whole(1000, DAY_MS, 30_000),
  INGEST_REPLICA_TIMEOUT_MS: Whole(1, 60_000, 2000),
  REQUEST_TIMEOUT_MS: Whole(1000, 3_600_000, 30_000),
  SUBSCRIPTION_LINGER_MS: Whole(0, 3_600_000, 5000),
  // One series' retained window is at most 360 buckets (1m over 6 h), plus the edges.
  SERIES_CACHE_MAX_BUCKETS: Whole(1000, 1_000_000_000, 200_000),
  MAX_BUFFERED_MB: Whole(1, 1_000_000, 256),
  /** How often a cluster process reads the ticker registry's change counter in Redis. */
  TICKER_REGISTRY_POLL_MS: Whole(100, 60_000, 1000),
  /** How often the JWKS is refetched in the background (a failed fetch keeps the keys held). */
  JWKS_REFRESH_MS: Whole(1000, DAY_MS, 600_000),
  /** Least time between two JWKS fetches caused by tokens with an unknown `kid`. */
  JWKS_COOLDOWN_MS: Whole(0, DAY_MS, 30_000)
})

/**
 * The environment Pulse reads, as validated and converted at start. `PULSE_FAULTS` (fault
 * injection) is not part of it: it is for tests only, read by shared/fault-points.ts, and
 * refused when `NODE_ENV=production`.
 */
export const EnvSchema = Type.Composite([OperatorEnvSchema, TuningEnvSchema])

/** Why a setting must lie in the schema's range (added to the validator's own message). */
const RANGE_REASON: Record<string, string> = {
  DEBOUNCE_MS: 'below 10 ms every change is its own event and the debounce is a busy loop',
  HEARTBEAT_MS: 'below 100 ms heartbeats crowd out the events',
  FLUSH_INTERVAL_MS: 'below 50 ms the write-behind spins',
  MAX_CONNECTIONS: 'a gateway that accepts no connection serves nobody',
  INGEST_BACKLOG_MAX_ITEMS: 'below one full batch per gateway ingest would refuse most batches',
  SERIES_CACHE_MAX_BUCKETS: 'one series window is up to 362 buckets'
}
export type Env = Static<typeof EnvSchema>

/** What an operator sets, typed: see {@link OperatorEnvSchema}. */
export interface OperatorConfig {
  port: number
  host: string
  role: 'all' | 'gateway' | 'worker'
  /** Set: cluster mode (Redis + BullMQ + DynamoDB). Unset: embedded mode. */
  redisUrl: string | undefined
  /** Set (`REDIS_CLUSTER=1`): `redisUrl` is a seed node of a Redis Cluster, reached through `natMap` when given. */
  redisCluster: { natMap?: Record<string, { host: string, port: number }> } | undefined
  /**
   * Whether a process refuses to start on a Redis whose `maxmemory-policy` is not
   * `noeviction` (`REDIS_EVICTION_CHECK=on`, the default). `skip` is for managed services
   * that hide `CONFIG`; the operator then vouches for the policy.
   */
  redisEvictionCheck: boolean
  /** Number of ingest queues a batch is split over by ticker (`INGEST_SHARDS`). */
  ingestShards: number
  dynamodbEndpoint: string | undefined
  awsRegion: string
  env: string
  dataDir: string
  /**
   * `TICKERS`: the initial ticker set, written into the ticker registry on the first start
   * only (an empty registry); later starts read the registry and do not apply it.
   */
  tickers: string[]
  /** Bearer token of the admin API (`ADMIN_TOKEN`); unset: the admin API is off (404). */
  adminToken: string | undefined
  /** Accepted ingest keys (comma-separated in the environment, for rotation). Empty: generate one. */
  ingestApiKeys: string[]
  /**
   * The producers behind the ingest keys: each key with a name, and optionally the tickers
   * (names or `*` patterns) and the batches per minute it is limited to (`INGEST_API_KEY`).
   */
  ingestProducers: ProducerConfig[]
  metricsToken: string | undefined
  readToken: string | undefined
  /** Reader JWTs: set when `JWT_SECRET` or `JWKS_URL` is. */
  jwt: JwtConfig | undefined
  /** Per-subject stream limits on one gateway; 0: no limit. */
  subjectMaxConnections: number
  subjectMaxSubscriptions: number
  /** Per-IP stream limits on one gateway; 0: no limit. */
  ipMaxConnections: number
  ipMaxSubscriptions: number
  /** History reads per minute per subject; 0: no limit. */
  rateLimitReadSubject: number
  /** Empty: any origin. */
  allowedOrigins: string[]
  maxConnections: number
  debounceMs: number
  heartbeatMs: number
  rateLimitIngest: number
  rateLimitRead: number
  dedupeWindowMs: number
  /**
   * Cluster mode: what a 202 waits for (see README, "Ingest durability"). `fsync` relies on
   * Redis `appendfsync always`, `replica` on a replica confirming the job (`WAIT`), `none`
   * on neither.
   */
  ingestDurability: IngestDurability
  /**
   * Admission control: items (and bytes of queued batches) accepted but not yet folded,
   * over every gateway of the queue, past which ingest answers 503 with `Retry-After`.
   */
  ingestBacklogMaxItems: number
  ingestBacklogMaxBytes: number
  /** How long a stopping gateway fails readiness and answers 503 before it closes streams and connections; unset: by mode, see the runtime. */
  drainMs: number | undefined
  demoFeed: boolean
  logLevel: string
  gatewayEngine: 'fastify' | 'uws'
}

/** How reader JWTs are verified: one of `secret` (HS256) and `jwksUrl` (RS256/ES256), or both. */
export interface JwtConfig {
  secret: string | undefined
  jwksUrl: string | undefined
  issuer: string | undefined
  audience: string | undefined
}

/** One ingest key and what it may post. */
export interface ProducerConfig {
  /** Named in the audit log; `key-1`, `key-2`… for keys given without a name. */
  name: string
  key: string
  /** Tickers or `*` patterns the producer may post; undefined: every ticker. */
  tickers: string[] | undefined
  /** Batches per minute; undefined: only the per-IP `RATE_LIMIT_INGEST`. */
  batchesPerMinute: number | undefined
}

/**
 * Parses `INGEST_API_KEY`: comma-separated entries, each either a bare key (the old form)
 * or `name:key[:tickers[:batches-per-minute]]`, tickers separated by `|` (`*` patterns
 * allowed, empty or `*` for all).
 */
export function parseIngestKeys (text: string | undefined): ProducerConfig[] {
  const producers: ProducerConfig[] = []
  for (const [index, entry] of list(text).entries()) {
    const parts = entry.split(':')
    if (parts.length === 1) {
      producers.push({ name: `key-${index + 1}`, key: entry, tickers: undefined, batchesPerMinute: undefined })
      continue
    }
    const [name = '', key = '', tickerText = '', rateText] = parts
    if (parts.length > 4 || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
      throw new ConfigError('INGEST_API_KEY', `entry ${index + 1} is not key or name:key[:tickers[:batches-per-minute]] with a name of letters, digits, . _ -`)
    }
    const tickers = tickerText.split('|').filter((t) => t.length > 0)
    if (tickers.some((t) => !/^[A-Z0-9.*-]{1,16}$/.test(t))) throw new ConfigError('INGEST_API_KEY', `producer ${name}: tickers are names or * patterns separated by |`)
    if (rateText !== undefined && !/^[1-9]\d{0,8}$/.test(rateText)) throw new ConfigError('INGEST_API_KEY', `producer ${name}: the rate is a whole number of batches per minute, at least 1`)
    producers.push({
      name,
      key,
      tickers: tickers.length === 0 || tickers.includes('*') ? undefined : tickers,
      batchesPerMinute: rateText === undefined ? undefined : Number(rateText)
    })
  }
  if (producers.some((p) => p.key.length < 16)) throw new ConfigError('INGEST_API_KEY', 'each key needs at least 16 characters')
  const names = producers.map((p) => p.name)
  if (new Set(names).size !== names.length) throw new ConfigError('INGEST_API_KEY', 'each producer needs its own name')
  return producers
}

/** Internal tuning knobs, typed: see {@link TuningEnvSchema}. */
export interface TuningConfig {
  flushIntervalMs: number
  /** How long a worker's write-behind holds the buckets it took before another worker may take them (cluster mode). */
  flushLeaseMs: number
  /** How long a worker's claim on an ingest batch lasts without renewal; a crashed worker's batch is retried after it. */
  queueLockMs: number
  /** How long `replica` durability waits for a replica before the producer gets a 503. */
  ingestReplicaTimeoutMs: number
  /** Longest time a client may take to send a whole request (slow-request defence). */
  requestTimeoutMs: number
  /** How long a gateway keeps a series' bus subscription after its last watcher left. */
  subscriptionLingerMs: number
  /** Buckets the gateway's series cache may hold over all series (least recently used go first). */
  seriesCacheMaxBuckets: number
  /** Most bytes all stream connections of a gateway may buffer together; over it the slowest are cut. */
  maxBufferedBytes: number
  /** How often a cluster process polls the ticker registry's change counter. */
  tickerRegistryPollMs: number
  /** Background refetch interval of `JWKS_URL`. */
  jwksRefreshMs: number
  /** Least time between two fetches of `JWKS_URL` for an unknown `kid`. */
  jwksCooldownMs: number
  /** Divisor of every retention and the dedupe window, for tests only (`PULSE_TEST_RETENTION_SCALE`); 1 in production. */
  retentionScale: number
}

/** Typed configuration, validated once at start and passed to everything as a parameter. */
export interface Config extends OperatorConfig, TuningConfig {}

export type IngestDurability = 'fsync' | 'replica' | 'none'

/** Invalid configuration: the message names the variable. */
export class ConfigError extends Error {
  constructor (readonly variable: string, message: string) {
    super(`${variable}: ${message}`)
    this.name = 'ConfigError'
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

export function parseDuration (text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text)
  if (match === null) throw new Error(`not a duration: ${text}`)
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number)
}

function list (text: string | undefined): string[] {
  return (text ?? '').split(/[\s,]+/).map((s) => s.trim()).filter((s) => s.length > 0)
}

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

/** The first problem the validator found, as a {@link ConfigError} naming the variable. */
function schemaError (err: Error & { errors?: Array<{ instancePath: string, message?: string }> }, env: Record<string, string>): ConfigError {
  const first = err.errors?.[0]
  const variable = first?.instancePath.replace(/^\//, '') ?? ''
  if (first === undefined || variable === '') return new ConfigError('environment', err.message)
  const reason = RANGE_REASON[variable]
  return new ConfigError(variable, `${first.message ?? 'is invalid'} (got ${JSON.stringify(env[variable])})${reason === undefined ? '' : `: ${reason}`}`)
}

/** Reads and validates the environment; throws {@link ConfigError} naming the first bad variable. */
export function loadConfig (source: Record<string, string | undefined> = process.env): Config {
  const env: Record<string, string> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key]
    if (value !== undefined && value !== '') env[key] = value
  }
  let e: Env
  try {
    // env-schema validates, converts the numbers and fills in the defaults the schema declares.
    e = envSchema<Env>({ schema: EnvSchema, data: env, env: false })
  } catch (err) {
    throw schemaError(err as Error, env)
  }
  const tickers = e.TICKERS === undefined ? DEFAULT_TICKERS : list(e.TICKERS)
  const tickerPattern = new RegExp(TICKER_PATTERN)
  const badTicker = tickers.find((t) => !tickerPattern.test(t))
  if (badTicker !== undefined) throw new ConfigError('TICKERS', `${JSON.stringify(badTicker)} does not match ${TICKER_PATTERN}`)
  if (tickers.length === 0) throw new ConfigError('TICKERS', 'no tickers')
  const ingestProducers = parseIngestKeys(e.INGEST_API_KEY)
  const keys = ingestProducers.map((p) => p.key)
  const jwt = e.JWT_SECRET === undefined && e.JWKS_URL === undefined
    ? undefined
    : { secret: e.JWT_SECRET, jwksUrl: e.JWKS_URL, issuer: e.JWT_ISSUER, audience: e.JWT_AUDIENCE }
  if (jwt === undefined && (e.JWT_ISSUER !== undefined || e.JWT_AUDIENCE !== undefined)) throw new ConfigError('JWT_ISSUER', 'JWT_ISSUER and JWT_AUDIENCE need JWT_SECRET or JWKS_URL')
  const configuredDedupeWindowMs = parseDuration(e.DEDUPE_WINDOW)
  if (configuredDedupeWindowMs < 24 * 3_600_000) throw new ConfigError('DEDUPE_WINDOW', 'must be at least 24h')
  const retentionScale = testRetentionScale(source)
  // A test scale shortens the window with the retentions, so the dedupe state expires too.
  const dedupeWindowMs = Math.max(1000, Math.round(configuredDedupeWindowMs / retentionScale))
  const redisUrl = e.REDIS_URL
  const clustered = flag(e.REDIS_CLUSTER, false)
  if (clustered && redisUrl === undefined) throw new ConfigError('REDIS_CLUSTER', 'needs REDIS_URL, the address of one node of the cluster')
  if (clustered && /^\/?[1-9]/.test(new URL(redisUrl as string).pathname)) throw new ConfigError('REDIS_URL', 'a Redis Cluster has no numbered databases: drop the path')
  if (!clustered && e.REDIS_CLUSTER_NAT_MAP !== undefined) throw new ConfigError('REDIS_CLUSTER_NAT_MAP', 'only applies with REDIS_CLUSTER=1')
  const redisCluster = clustered ? (e.REDIS_CLUSTER_NAT_MAP === undefined ? {} : { natMap: parseNatMap(e.REDIS_CLUSTER_NAT_MAP) }) : undefined
  const ingestShards = e.INGEST_SHARDS ?? (clustered ? DEFAULT_CLUSTER_INGEST_SHARDS : 1)
  const ingestDurability = e.INGEST_DURABILITY
  if (ingestDurability === 'replica' && redisUrl === undefined) {
    throw new ConfigError('INGEST_DURABILITY', 'replica needs REDIS_URL (cluster mode); the embedded journal always fsyncs')
  }
  if (ingestDurability === 'replica' && clustered) {
    // WAIT has no key, so a cluster client cannot send it to the master that holds a shard's job.
    throw new ConfigError('INGEST_DURABILITY', 'replica works with a single Redis primary and its replicas; on a Redis Cluster use fsync, with every master running appendfsync always')
  }
  checkFaults(source)
  return {
    port: e.PORT,
    host: e.HOST,
    role: e.ROLE,
    redisUrl,
    redisCluster,
    redisEvictionCheck: e.REDIS_EVICTION_CHECK === 'on',
    ingestShards,
    dynamodbEndpoint: e.DYNAMODB_ENDPOINT,
    awsRegion: e.AWS_REGION,
    env: e.PULSE_ENV,
    dataDir: e.DATA_DIR,
    tickers: [...new Set(tickers)],
    adminToken: e.ADMIN_TOKEN,
    ingestApiKeys: keys,
    ingestProducers,
    metricsToken: e.METRICS_TOKEN,
    readToken: e.READ_TOKEN,
    jwt,
    subjectMaxConnections: e.SUBJECT_MAX_CONNECTIONS,
    subjectMaxSubscriptions: e.SUBJECT_MAX_SUBSCRIPTIONS,
    rateLimitReadSubject: e.RATE_LIMIT_READ_SUBJECT,
    ipMaxConnections: e.IP_MAX_CONNECTIONS,
    ipMaxSubscriptions: e.IP_MAX_SUBSCRIPTIONS,
    allowedOrigins: list(e.ALLOWED_ORIGINS),
    maxConnections: e.MAX_CONNECTIONS,
    debounceMs: e.DEBOUNCE_MS,
    heartbeatMs: e.HEARTBEAT_MS,
    rateLimitIngest: e.RATE_LIMIT_INGEST,
    rateLimitRead: e.RATE_LIMIT_READ,
    dedupeWindowMs,
    ingestDurability,
    ingestBacklogMaxItems: e.INGEST_BACKLOG_MAX_ITEMS,
    ingestBacklogMaxBytes: e.INGEST_BACKLOG_MAX_MB * 1024 * 1024,
    drainMs: e.DRAIN_MS,
    demoFeed: flag(e.DEMO_FEED, redisUrl === undefined),
    logLevel: e.LOG_LEVEL,
    gatewayEngine: e.GATEWAY_ENGINE,
    flushIntervalMs: e.FLUSH_INTERVAL_MS,
    flushLeaseMs: e.FLUSH_LEASE_MS,
    queueLockMs: e.QUEUE_LOCK_MS,
    ingestReplicaTimeoutMs: e.INGEST_REPLICA_TIMEOUT_MS,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    subscriptionLingerMs: e.SUBSCRIPTION_LINGER_MS,
    seriesCacheMaxBuckets: e.SERIES_CACHE_MAX_BUCKETS,
    maxBufferedBytes: e.MAX_BUFFERED_MB * 1024 * 1024,
    tickerRegistryPollMs: e.TICKER_REGISTRY_POLL_MS,
    jwksRefreshMs: e.JWKS_REFRESH_MS,
    jwksCooldownMs: e.JWKS_COOLDOWN_MS,
    retentionScale
  }
}

/**
 * `PULSE_TEST_RETENTION_SCALE` divides every resolution's retention and the dedupe window,
 * so a soak sees expiry and journal checkpoints many times in minutes. Like `PULSE_FAULTS`
 * it is no setting: refused when `NODE_ENV=production`.
 */
function testRetentionScale (source: Record<string, string | undefined>): number {
  const text = source.PULSE_TEST_RETENTION_SCALE
  if (text === undefined || text === '') return 1
  if (!/^\d{1,7}$/.test(text) || Number(text) < 1) throw new ConfigError('PULSE_TEST_RETENTION_SCALE', `must be a whole number of at least 1 (got ${JSON.stringify(text)})`)
  const scale = Number(text)
  if (scale > 1 && source.NODE_ENV === 'production') throw new ConfigError('PULSE_TEST_RETENTION_SCALE', 'shortened retention is for tests and is refused when NODE_ENV=production')
  return scale
}

/**
 * `PULSE_FAULTS` arms fault points for tests (shared/fault-points.ts reads it). It is no
 * setting: a malformed value, or any value when `NODE_ENV=production`, stops the process.
 */
function checkFaults (source: Record<string, string | undefined>): void {
  const faults = source.PULSE_FAULTS
  if (faults === undefined || faults === '') return
  if (source.NODE_ENV === 'production') throw new ConfigError('PULSE_FAULTS', 'fault injection is for tests and is refused when NODE_ENV=production')
  try {
    parseFaults(faults)
  } catch (err) {
    throw new ConfigError('PULSE_FAULTS', (err as Error).message.replace(/^PULSE_FAULTS: /, ''))
  }
}

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
  QUEUE_LOCK_MS: Type.Optional(Count),
  REQUEST_TIMEOUT_MS: Type.Optional(Count),
  DRAIN_MS: Type.Optional(Count),
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
  /** How long a worker's claim on an ingest batch lasts without renewal; a crashed worker's batch is retried after it. */
  queueLockMs: number
  /** Longest time a client may take to send a whole request (slow-request defence). */
  requestTimeoutMs: number
  /** How long a stopping gateway keeps answering 503 before it closes; unset: 5 s in cluster mode, 0 embedded. */
  drainMs: number | undefined
  demoFeed: boolean
  logLevel: string
  gatewayEngine: 'fastify' | 'uws'
}

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
  const queueLockMs = Number(e.QUEUE_LOCK_MS ?? 30_000)
  if (queueLockMs < 1000) throw new ConfigError('QUEUE_LOCK_MS', 'must be at least 1000')
  const requestTimeoutMs = Number(e.REQUEST_TIMEOUT_MS ?? 30_000)
  if (requestTimeoutMs < 1000) throw new ConfigError('REQUEST_TIMEOUT_MS', 'must be at least 1000')
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
    queueLockMs,
    requestTimeoutMs,
    drainMs: e.DRAIN_MS === undefined ? undefined : Number(e.DRAIN_MS),
    demoFeed: flag(e.DEMO_FEED, redisUrl === undefined),
    logLevel: e.LOG_LEVEL ?? 'info',
    gatewayEngine: e.GATEWAY_ENGINE ?? 'fastify'
  }
}

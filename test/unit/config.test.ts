import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ConfigError, DEFAULT_TICKERS, EnvSchema, loadConfig, OperatorEnvSchema, TuningEnvSchema } from '../../shared/config/config.js'

t.test('defaults: embedded mode with the demo feed, 13 tickers', async (t) => {
  const config = loadConfig({})
  t.equal(config.port, 3000)
  t.equal(config.redisUrl, undefined)
  t.equal(config.demoFeed, true)
  t.same(config.tickers, DEFAULT_TICKERS)
  t.equal(config.dedupeWindowMs, 86_400_000)
  t.equal(config.rateLimitIngest, 600)
  t.equal(config.env, 'dev')
  t.equal(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).demoFeed, false, 'no demo feed in cluster mode by default')
  t.equal(loadConfig({ DEMO_FEED: '0' }).demoFeed, false)
  t.same(loadConfig({ INGEST_API_KEY: 'first-key-0123456789, second-key-0123456789' }).ingestApiKeys, ['first-key-0123456789', 'second-key-0123456789'])
  t.same(loadConfig({ TICKERS: 'AAPL BRK.B,AAPL' }).tickers, ['AAPL', 'BRK.B'])
  t.equal(config.drainMs, undefined, 'drain defaults by mode at start')
  t.equal(loadConfig({ DRAIN_MS: '2000' }).drainMs, 2000)
})

t.test('a bad value names its variable', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ ROLE: 'boss' }, 'ROLE'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ TICKERS: 'AAPL,msft' }, 'TICKERS'],
    [{ TICKERS: 'AA#PL' }, 'TICKERS'],
    [{ INGEST_API_KEY: 'short' }, 'INGEST_API_KEY'],
    [{ DEDUPE_WINDOW: '1h' }, 'DEDUPE_WINDOW'],
    [{ DEDUPE_WINDOW: 'forever' }, 'DEDUPE_WINDOW'],
    [{ DEMO_FEED: 'yes' }, 'DEMO_FEED'],
    [{ PULSE_ENV: 'Prod#1' }, 'PULSE_ENV'],
    [{ MAX_CONNECTIONS: '-1' }, 'MAX_CONNECTIONS'],
    [{ DRAIN_MS: 'soon' }, 'DRAIN_MS'],
    [{ REDIS_EVICTION_CHECK: 'off' }, 'REDIS_EVICTION_CHECK'],
    [{ INGEST_BACKLOG_MAX_ITEMS: '10' }, 'INGEST_BACKLOG_MAX_ITEMS'],
    [{ INGEST_BACKLOG_MAX_MB: '0' }, 'INGEST_BACKLOG_MAX_MB']
  ]
  for (const [env, variable] of cases) {
    let caught: unknown
    try {
      loadConfig(env)
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof ConfigError && caught.variable === variable && caught.message.startsWith(variable), `${JSON.stringify(env)} → ${variable}`)
  }
})

t.test('the process stops at start on bad configuration, naming the variable', async (t) => {
  const root = fileURLToPath(new URL('../..', import.meta.url))
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'services/main.ts'], {
    cwd: root,
    env: { ...process.env, PORT: 'eighty', DATA_DIR: '/nonexistent-pulse-dir' },
    encoding: 'utf8',
    timeout: 30_000
  })
  t.equal(run.status, 78, 'exit code 78 (configuration error)')
  t.match(run.stdout + run.stderr, /PORT/)
})

function refusal (env: Record<string, string>): ConfigError | undefined {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  return undefined
}

t.test('settings that would make a busy loop or refuse everything are refused, naming the variable and why', async (t) => {
  const refused: Array<[string, string]> = [
    ['HEARTBEAT_MS', '0'], ['FLUSH_INTERVAL_MS', '0'], ['DEBOUNCE_MS', '0'], ['DEBOUNCE_MS', '5'], ['MAX_CONNECTIONS', '0'],
    ['SERIES_CACHE_MAX_BUCKETS', '10'], ['MAX_BUFFERED_MB', '0'], ['REQUEST_TIMEOUT_MS', '0'], ['FLUSH_LEASE_MS', '10'],
    ['QUEUE_LOCK_MS', '0'], ['INGEST_REPLICA_TIMEOUT_MS', '0'], ['DRAIN_MS', '-1'], ['DRAIN_MS', '3600000'], ['PORT', '1.5']
  ]
  for (const [variable, value] of refused) {
    t.equal(refusal({ [variable]: value })?.variable, variable, `${variable}=${value} is refused`)
  }
  t.match(refusal({ DEBOUNCE_MS: '0' })?.message, /busy loop/, 'and the message says why')
  const accepted = loadConfig({ RATE_LIMIT_INGEST: '0', RATE_LIMIT_READ: '0', SUBSCRIPTION_LINGER_MS: '0', DRAIN_MS: '0', PORT: '0' })
  t.equal(accepted.rateLimitIngest, 0, 'a 0 that means "off" is accepted')
  t.equal(accepted.subscriptionLingerMs, 0)
  t.equal(accepted.drainMs, 0)
  t.equal(accepted.port, 0)
})

t.test('admission limits and the eviction check', async (t) => {
  const config = loadConfig({})
  t.equal(config.ingestBacklogMaxItems, 500_000)
  t.equal(config.ingestBacklogMaxBytes, 256 * 1024 * 1024)
  t.equal(config.redisEvictionCheck, true)
  const set = loadConfig({ INGEST_BACKLOG_MAX_ITEMS: '2000', INGEST_BACKLOG_MAX_MB: '3', REDIS_EVICTION_CHECK: 'skip' })
  t.equal(set.ingestBacklogMaxItems, 2000)
  t.equal(set.ingestBacklogMaxBytes, 3 * 1024 * 1024)
  t.equal(set.redisEvictionCheck, false)
})

t.test('PULSE_FAULTS is no setting: not in the schema, checked apart, refused in production', async (t) => {
  t.notOk('PULSE_FAULTS' in EnvSchema.properties, 'not part of the configuration schema')
  t.notOk('PULSE_FAULTS' in OperatorEnvSchema.properties)
  t.doesNotThrow(() => loadConfig({ PULSE_FAULTS: 'fold.after=kill@3' }), 'readable for tests')
  t.equal(refusal({ PULSE_FAULTS: 'nonsense' })?.variable, 'PULSE_FAULTS')
  t.throws(() => loadConfig({ PULSE_FAULTS: 'fold.after=kill', NODE_ENV: 'production' }), /refused when NODE_ENV=production/)
})

t.test('tuning knobs are grouped apart from what an operator sets', async (t) => {
  const operator = Object.keys(OperatorEnvSchema.properties)
  const tuning = Object.keys(TuningEnvSchema.properties)
  t.same(operator.filter((k) => tuning.includes(k)), [], 'no variable is in both groups')
  t.same(Object.keys(EnvSchema.properties).sort(), [...operator, ...tuning].sort(), 'the schema is the two groups')
  for (const knob of ['FLUSH_LEASE_MS', 'QUEUE_LOCK_MS', 'SERIES_CACHE_MAX_BUCKETS', 'SUBSCRIPTION_LINGER_MS']) t.ok(tuning.includes(knob), `${knob} is a tuning knob`)
})

t.test('PULSE_TEST_RETENTION_SCALE shortens the dedupe window with the retentions, and is refused in production', async (t) => {
  t.equal(loadConfig({}).retentionScale, 1, 'production retention by default')
  const scaled = loadConfig({ PULSE_TEST_RETENTION_SCALE: '1440' })
  t.equal(scaled.retentionScale, 1440)
  t.equal(scaled.dedupeWindowMs, 60_000, 'the 24 h window becomes one minute')
  for (const env of [{ PULSE_TEST_RETENTION_SCALE: '0' }, { PULSE_TEST_RETENTION_SCALE: 'fast' }, { PULSE_TEST_RETENTION_SCALE: '60', NODE_ENV: 'production' }]) {
    let caught: unknown
    try {
      loadConfig(env)
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof ConfigError && caught.variable === 'PULSE_TEST_RETENTION_SCALE', `${JSON.stringify(env)} is refused, naming the variable`)
  }
  t.throws(() => loadConfig({ PULSE_TEST_RETENTION_SCALE: '60', NODE_ENV: 'production' }), /refused when NODE_ENV=production/)
  t.equal(loadConfig({ PULSE_TEST_RETENTION_SCALE: '1', NODE_ENV: 'production' }).retentionScale, 1, 'a scale of 1 changes nothing and is allowed')
})

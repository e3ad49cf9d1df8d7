import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ConfigError, DEFAULT_TICKERS, loadConfig } from '../../shared/config/config.js'

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
    [{ DRAIN_MS: 'soon' }, 'DRAIN_MS']
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

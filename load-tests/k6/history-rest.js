// History queries across tickers and resolutions (SPEC §3): latency seen by the client,
// `query_time_ms` seen by the server, and the cache hit rate from the `cache_hit` field.
//
//   k6 run -e BASE_URL=https://pulse.example.com -e VUS=20 -e DURATION=2m \
//          -e PROFILE=seed load-tests/k6/history-rest.js
// With INGEST_API_KEY set, setup() first posts a few hours of history to query.
import http from 'k6/http'
import { check, sleep } from 'k6'
import { Counter, Rate, Trend } from 'k6/metrics'
import { settings } from './lib/settings.js'
import { seedHistory } from './lib/ingest.js'
import { thresholdsFor } from '../shared/plan.js'

const config = JSON.parse(open('../scenarios.json'))
const scenario = config.scenarios['history-rest']
const env = settings(config, 'history-rest')

const historyLatency = new Trend('history_latency_ms', true)
const historyServer = new Trend('history_server_ms', true)
const cacheHit = new Rate('cache_hit')
const httpErrors = new Counter('http_errors')

export const options = {
  scenarios: {
    history: { executor: 'constant-vus', exec: 'history', vus: env.users, duration: env.duration }
  },
  thresholds: thresholdsFor(config, env.profile, scenario.metrics)
}

function query (ticker, resolution) {
  return http.get(`${env.baseUrl}/api/v2/timeseries/${ticker}?resolution=${resolution}`, {
    tags: { name: 'GET /api/v2/timeseries/{ticker}', resolution }
  })
}

export function setup () {
  if (env.ingestOn && __ENV.SEED_HISTORY !== '0') seedHistory(env, config, `k6h${Date.now().toString(36)}`)
  // Warm-up, not measured: the targets are for a cache in steady state, and the first read
  // of each series is a miss by design.
  for (const ticker of config.tickers) {
    for (const resolution of config.resolutions) query(ticker, resolution)
  }
  return {}
}

export function history () {
  const ticker = config.tickers[Math.floor(Math.random() * config.tickers.length)]
  const resolution = config.resolutions[Math.floor(Math.random() * config.resolutions.length)]
  const res = query(ticker, resolution)
  historyLatency.add(res.timings.duration, { resolution })
  let body
  try {
    body = res.json()
  } catch (err) {
    body = undefined
  }
  const ok = check(res, {
    'history answers 200': (r) => r.status === 200,
    'history body matches the query': () => body !== undefined && body.ticker === ticker && body.resolution === resolution && Array.isArray(body.buckets)
  })
  if (!ok) httpErrors.add(1)
  if (body !== undefined && typeof body.cache_hit === 'boolean') {
    cacheHit.add(body.cache_hit)
    historyServer.add(body.query_time_ms, { resolution })
  }
  const [low, high] = scenario.thinkMs
  sleep((low + Math.random() * (high - low)) / 1000)
}

// Dashboard users on WebSocket (SPEC §4). Each VU subscribes to a few tickers at several
// resolutions, switches resolution every few seconds with a `snapshot` request, and checks
// that every event parses and matches its subscription.
//
//   k6 run -e BASE_URL=https://pulse.example.com -e VUS=100 -e DURATION=2m \
//          -e INGEST_API_KEY=... -e PROFILE=seed load-tests/k6/dashboard-ws.js
//
// Needs k6 >= 1.6 (k6/websockets; setTimeout and setInterval are globals). For an older k6,
// `npx tsx load-tests/k6-compat.ts --k6 <version>` writes bundles to load-tests/k6-compat/.
import { check, sleep } from 'k6'
import { Counter, Trend } from 'k6/metrics'
import { WebSocket } from 'k6/websockets'
import { settings } from './lib/settings.js'
import { INGEST_METRICS, ingestScenario, ms, postLiveBatch } from './lib/ingest.js'
import { thresholdsFor, userSubscription } from '../shared/plan.js'
import { eventProblem, isBucketEvent, liveLatencyMs } from '../shared/events.js'

const config = JSON.parse(open('../scenarios.json'))
const scenario = config.scenarios['dashboard-ws']
const env = settings(config, 'dashboard-ws')
const totalMs = ms(env.rampUp) + ms(env.duration)

const wsConnect = new Trend('ws_connect_ms', true)
const switchMs = new Trend('resolution_switch_ms', true)
const snapshotServer = new Trend('snapshot_server_ms', true)
const liveLatency = new Trend('live_update_latency_ms', true)
const wsEvents = new Counter('ws_events')
const wsErrors = new Counter('ws_errors')

const scenarios = {
  dashboard: { executor: 'constant-vus', exec: 'dashboard', vus: env.users, duration: `${totalMs}ms`, gracefulStop: '10s' }
}
if (env.ingestOn) scenarios.ingest = ingestScenario(env, `${totalMs}ms`, '0s')

export const options = {
  scenarios,
  thresholds: thresholdsFor(config, env.profile, env.ingestOn ? scenario.metrics.concat(INGEST_METRICS) : scenario.metrics)
}

export function setup () {
  return { startedAt: Date.now(), runId: `k6${Date.now().toString(36)}` }
}

export function ingest (data) {
  postLiveBatch(env, config, data.runId)
}

export function dashboard (data) {
  const endAt = data.startedAt + totalMs - 1000
  // Users arrive spread over the ramp-up, as a real audience does, not all in one instant.
  const arriveAt = data.startedAt + Math.floor((__VU - 1) / env.users * ms(env.rampUp))
  if (Date.now() >= endAt) {
    // The test is about to end: idle instead of spinning through empty iterations.
    sleep(Math.max(0, data.startedAt + totalMs - Date.now()) / 1000)
    return
  }
  const subscription = userSubscription(config, scenario, __VU - 1)
  setTimeout(() => session(subscription, endAt), Math.max(0, arriveAt - Date.now()))
}

function session (subscription, endAt) {
  const openedAt = Date.now()
  const pending = {}
  let requestSeq = 0
  let switcher
  const ws = new WebSocket(`${env.wsUrl}/api/v2/ws`)

  ws.onopen = () => {
    wsConnect.add(Date.now() - openedAt)
    ws.send(JSON.stringify({ op: 'subscribe', tickers: subscription.tickers, resolutions: subscription.resolutions }))
    switcher = setInterval(() => {
      const ticker = subscription.tickers[requestSeq % subscription.tickers.length]
      const resolution = subscription.resolutions[requestSeq % subscription.resolutions.length]
      const id = `r${++requestSeq}`
      pending[id] = { sentAt: Date.now(), ticker, resolution }
      ws.send(JSON.stringify({ op: 'snapshot', id, ticker, resolution }))
    }, scenario.switchEveryMs)
    setTimeout(() => {
      clearInterval(switcher)
      ws.close()
    }, Math.max(0, endAt - Date.now()))
  }

  ws.onmessage = (message) => {
    const receivedAt = Date.now()
    wsEvents.add(1)
    let data
    try {
      data = JSON.parse(message.data)
    } catch (err) {
      check(null, { 'event parses and matches the subscription': () => false })
      return
    }
    const type = data.type
    let problem = eventProblem(type, data, subscription)
    if (type === 'snapshot') {
      const request = pending[data.id]
      if (request === undefined) {
        problem = `snapshot for unknown request ${data.id}`
      } else {
        delete pending[data.id]
        switchMs.add(receivedAt - request.sentAt)
        if (typeof data.query_time_ms === 'number') snapshotServer.add(data.query_time_ms)
        if (data.ticker !== request.ticker || data.resolution !== request.resolution) problem = 'snapshot answers another series'
      }
    }
    if (type === 'error') {
      wsErrors.add(1)
      problem = `error event ${data.code}: ${data.message}`
    }
    if (isBucketEvent(type) && problem === undefined) {
      const latency = liveLatencyMs(type, data, receivedAt)
      if (latency !== undefined) liveLatency.add(Math.max(0, latency))
    }
    check(data, { 'event parses and matches the subscription': () => problem === undefined })
  }

  ws.onerror = (event) => {
    wsErrors.add(1)
    check(null, { 'websocket stays up': () => false })
    clearInterval(switcher)
    console.warn(`VU ${__VU}: websocket error ${event.error}`)
  }
}

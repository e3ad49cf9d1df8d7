// Legacy clients on Server-Sent Events (SPEC §4). Needs a k6 with the xk6-sse extension
// (see docs/testing.md: `xk6 build --with github.com/phymbert/xk6-sse`).
//
//   ./k6 run -e BASE_URL=https://pulse.example.com -e VUS=20 -e DURATION=2m \
//            -e INGEST_API_KEY=... load-tests/k6/sse-legacy.js
import sse from 'k6/x/sse'
import { check, sleep } from 'k6'
import { Counter, Trend } from 'k6/metrics'
import { settings } from './lib/settings.js'
import { INGEST_METRICS, ingestScenario, ms, postLiveBatch } from './lib/ingest.js'
import { thresholdsFor, userSubscription } from '../shared/plan.js'
import { eventProblem, isBucketEvent, liveLatencyMs } from '../shared/events.js'

const config = JSON.parse(open('../scenarios.json'))
const scenario = config.scenarios['sse-legacy']
const env = settings(config, 'sse-legacy')
const totalMs = ms(env.rampUp) + ms(env.duration)

const sseConnect = new Trend('sse_connect_ms', true)
const sseLatency = new Trend('sse_update_latency_ms', true)
const sseEvents = new Counter('sse_events')
const sseErrors = new Counter('sse_errors')

const scenarios = {
  sse: { executor: 'constant-vus', exec: 'legacy', vus: env.users, duration: `${totalMs}ms`, gracefulStop: '20s' }
}
if (env.ingestOn) scenarios.ingest = ingestScenario(env, `${totalMs}ms`, '0s')

export const options = {
  scenarios,
  thresholds: thresholdsFor(config, env.profile, env.ingestOn ? scenario.metrics.concat(INGEST_METRICS) : scenario.metrics)
}

export function setup () {
  return { startedAt: Date.now(), runId: `k6s${Date.now().toString(36)}` }
}

export function ingest (data) {
  postLiveBatch(env, config, data.runId)
}

export function legacy (data) {
  const endAt = data.startedAt + totalMs - 1000
  const arriveAt = data.startedAt + Math.floor((__VU - 1) / env.users * ms(env.rampUp))
  if (Date.now() < arriveAt) sleep((arriveAt - Date.now()) / 1000)
  if (Date.now() >= endAt) {
    sleep(Math.max(0, data.startedAt + totalMs - Date.now()) / 1000)
    return
  }
  const subscription = userSubscription(config, scenario, __VU - 1)
  const url = `${env.baseUrl}/api/v2/stream?tickers=${subscription.tickers.join(',')}&resolutions=${subscription.resolutions.join(',')}`
  const openedAt = Date.now()
  // sse.open blocks the VU until the stream closes; events (heartbeats at the latest)
  // are where the VU gets a chance to close it at the end of the test.
  const response = sse.open(url, { method: 'GET', tags: { name: 'GET /api/v2/stream' } }, (client) => {
    client.on('open', () => sseConnect.add(Date.now() - openedAt))
    client.on('event', (event) => {
      const receivedAt = Date.now()
      sseEvents.add(1)
      let data
      try {
        data = JSON.parse(event.data)
      } catch (err) {
        data = undefined
      }
      const problem = data === undefined ? 'data is not JSON' : eventProblem(event.name, data, subscription)
      if (problem === undefined && isBucketEvent(event.name)) {
        const latency = liveLatencyMs(event.name, data, receivedAt)
        if (latency !== undefined) sseLatency.add(Math.max(0, latency))
      }
      check(event, {
        'event parses and matches the subscription': () => problem === undefined,
        'bucket event has an id': (e) => !isBucketEvent(e.name) || (typeof e.id === 'string' && e.id !== '')
      })
      if (receivedAt >= endAt) client.close()
    })
    client.on('error', (e) => {
      sseErrors.add(1)
      console.warn(`VU ${__VU}: stream error ${e.error()}`)
    })
  })
  check(response, { 'stream answers 200': (r) => r && r.status === 200 })
}

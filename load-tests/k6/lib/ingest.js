// The producer, shared by ingest.js and by the streaming scripts (whose live update
// latency needs items flowing while they run).
import http from 'k6/http'
import { check } from 'k6'
import { Counter, Rate, Trend } from 'k6/metrics'
import { parseDuration } from '../../shared/plan.js'
import { historyBatches, liveBatch } from '../../shared/items.js'

export const INGEST_METRICS = ['ingest_latency_ms', 'ingest_items', 'ingest_failed', 'checks']

const ingestLatency = new Trend('ingest_latency_ms', true)
const ingestItems = new Counter('ingest_items')
const ingestFailed = new Rate('ingest_failed')

/** A constant-arrival-rate scenario posting `itemsPerSecond` in batches, for `duration`. */
export function ingestScenario (env, duration, startTime) {
  const perMinute = Math.max(1, Math.round(env.itemsPerSecond * 60 / env.batchSize))
  const perSecond = perMinute / 60
  return {
    executor: 'constant-arrival-rate',
    exec: 'ingest',
    rate: perMinute,
    timeUnit: '1m',
    duration,
    startTime,
    preAllocatedVUs: Math.max(2, Math.ceil(perSecond)),
    maxVUs: Math.max(10, Math.ceil(perSecond * 4))
  }
}

function post (env, items) {
  const res = http.post(`${env.baseUrl}/api/v2/items`, JSON.stringify(items), {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${env.ingestKey}` },
    tags: { name: 'POST /api/v2/items' }
  })
  const ok = check(res, { 'ingest answers 202': (r) => r.status === 202 })
  ingestFailed.add(!ok)
  ingestLatency.add(res.timings.duration)
  if (ok) ingestItems.add(items.length)
  return ok
}

/** Posts one live batch; ids are unique per run, VU and iteration. */
export function postLiveBatch (env, config, runId) {
  const seq = __VU * 1000000 + __ITER
  post(env, liveBatch({ tickers: config.tickers, size: env.batchSize, source: env.source, runId: `${runId}-${__VU}`, seq, now: Date.now() }))
}

/** Posts the history that history queries read (setup phase; needs the ingest key). */
export function seedHistory (env, config, runId) {
  const seed = config.scenarios.ingest.seedHistory
  const batches = historyBatches({ tickers: config.tickers, hours: seed.hours, everyMinutes: seed.everyMinutes, batchSize: seed.batchSize, source: env.source, runId, now: Date.now() })
  for (const batch of batches) post(env, batch)
}

/** Milliseconds of a k6 duration string. */
export function ms (duration) {
  return parseDuration(duration)
}

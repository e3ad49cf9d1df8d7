// A producer posting scored items at a steady rate (SPEC §3), to run beside the other
// scripts against a deployment without its own feed. Needs INGEST_API_KEY.
//
//   k6 run -e BASE_URL=https://pulse.example.com -e INGEST_API_KEY=... \
//          -e ITEMS_PER_SECOND=50 -e BATCH_SIZE=10 -e DURATION=2m load-tests/k6/ingest.js
import { settings } from './lib/settings.js'
import { INGEST_METRICS, ingestScenario, postLiveBatch } from './lib/ingest.js'
import { thresholdsFor } from '../shared/plan.js'

const config = JSON.parse(open('../scenarios.json'))
const env = settings(config, 'ingest')
if (env.ingestKey === '') throw new Error('ingest.js needs INGEST_API_KEY (the Bearer key of POST /api/v2/items)')

export const options = {
  scenarios: { ingest: ingestScenario(env, env.duration, '0s') },
  thresholds: thresholdsFor(config, env.profile, INGEST_METRICS)
}

export function setup () {
  return { runId: `k6i${Date.now().toString(36)}` }
}

export function ingest (data) {
  postLiveBatch(env, config, data.runId)
}

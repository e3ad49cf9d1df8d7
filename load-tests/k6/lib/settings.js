// Settings from the environment (`k6 run -e NAME=value` or exported variables), with the
// defaults of scenarios.json. Shared by every k6 script so the names stay the same.
import { parseDuration } from '../../shared/plan.js'

function number (name, fallback) {
  const raw = __ENV[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got ${raw}`)
  return value
}

function text (name, fallback) {
  const raw = __ENV[name]
  return raw === undefined || raw === '' ? fallback : raw
}

/** Resolved settings for one scenario of scenarios.json. */
export function settings (config, scenarioName) {
  const scenario = config.scenarios[scenarioName]
  const ingest = config.scenarios.ingest
  const baseUrl = text('BASE_URL', 'http://127.0.0.1:3000').replace(/\/+$/, '')
  const duration = text('DURATION', scenario.duration)
  const rampUp = text('RAMP_UP', scenario.rampUp === undefined ? '0s' : scenario.rampUp)
  parseDuration(duration)
  parseDuration(rampUp)
  return {
    baseUrl,
    wsUrl: baseUrl.replace(/^http/, 'ws'),
    profile: text('PROFILE', 'seed'),
    users: number('VUS', scenario.users === undefined ? 1 : scenario.users),
    duration,
    rampUp,
    ingestKey: text('INGEST_API_KEY', ''),
    // The built-in producer runs when a key is given, unless INGEST=0 (another producer feeds the deployment).
    ingestOn: text('INGEST', '1') !== '0' && text('INGEST_API_KEY', '') !== '',
    itemsPerSecond: number('ITEMS_PER_SECOND', ingest.itemsPerSecond),
    batchSize: number('BATCH_SIZE', ingest.batchSize),
    source: ingest.source
  }
}

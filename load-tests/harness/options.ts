import { parseArgs } from 'node:util'
import { parseDuration } from '../shared/plan.js'
import { SCENARIO_NAMES, type ScenarioName } from './config.js'

/** Options of one harness run, from the command line and the environment. */
export interface HarnessOptions {
  url: string | undefined
  embedded: boolean
  scenarios: ScenarioName[]
  /** Overrides the users of the main selected scenario (dashboard-ws when all run). */
  users: number | undefined
  durationMs: number | undefined
  rampUpMs: number | undefined
  /** Unmeasured ingest before the run. */
  warmUpMs: number
  profile: string
  itemsPerSecond: number | undefined
  ingestKey: string | undefined
  seedHistory: boolean
}

/** A bad command line: the message says what to change. */
export class UsageError extends Error {
  override name = 'UsageError'
}

export const USAGE = `Usage: npm run loadtest -- [options]
  --url URL          Pulse to test (or PULSE_URL); loopback unless given explicitly
  --embedded         start an embedded Pulse in a child process (temp DATA_DIR, 127.0.0.1)
  --scenario NAME    all | dashboard-ws | history-rest | sse-legacy | ingest (comma-separated; default all)
  --users N          users of the selected scenario (dashboard-ws when all run); max 20000
  --duration D       steady phase, e.g. 20s, 2m (max 30m)
  --ramp-up D        time over which users connect
  --warm-up D        unmeasured ingest before the run (default 10s; 0s to skip)
  --profile P        seed | pulse (thresholds from scenarios.json; default seed)
  --rate N           ingest items per second (max 100000)
  --no-seed          do not post history before the run
Environment: PULSE_URL, INGEST_API_KEY (needed for ingest and live update latency),
  LOADTEST_CPU_PROF=DIR (with --embedded: Pulse writes a CPU profile to DIR as it stops).`

const MAX_USERS = 20_000
const MAX_DURATION_MS = 30 * 60_000
const MAX_RATE = 100_000

function positive (name: string, raw: string | undefined, max: number): number | undefined {
  if (raw === undefined) return undefined
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1 || value > max) throw new UsageError(`${name} must be an integer from 1 to ${max}, got ${raw}`)
  return value
}

function duration (name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined
  let ms: number
  try {
    ms = parseDuration(raw)
  } catch {
    throw new UsageError(`${name} must be a duration like 20s or 2m, got ${raw}`)
  }
  if (ms > MAX_DURATION_MS) throw new UsageError(`${name} is at most 30m`)
  return ms
}

function scenarioList (raw: string): ScenarioName[] {
  if (raw === 'all') return [...SCENARIO_NAMES]
  const names = raw.split(',').map((name) => name.trim())
  for (const name of names) {
    if (!(SCENARIO_NAMES as readonly string[]).includes(name)) throw new UsageError(`unknown scenario ${name}; known: all, ${SCENARIO_NAMES.join(', ')}`)
  }
  return names as ScenarioName[]
}

/** Parses argv (without node and script) and the environment. */
export function parseOptions (argv: string[], env: NodeJS.ProcessEnv): HarnessOptions {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        embedded: { type: 'boolean', default: false },
        scenario: { type: 'string', default: 'all' },
        users: { type: 'string' },
        duration: { type: 'string' },
        'ramp-up': { type: 'string' },
        'warm-up': { type: 'string', default: '10s' },
        profile: { type: 'string', default: 'seed' },
        rate: { type: 'string' },
        'no-seed': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false }
      },
      strict: true
    }).values
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (parsed.help === true) throw new UsageError('')
  const url = parsed.url ?? (env.PULSE_URL === '' ? undefined : env.PULSE_URL)
  if (url !== undefined && parsed.embedded === true) throw new UsageError('give either --url or --embedded, not both')
  if (url !== undefined && !/^https?:\/\//.test(url)) throw new UsageError(`--url must start with http:// or https://, got ${url}`)
  const key = env.INGEST_API_KEY
  return {
    url: url?.replace(/\/+$/, ''),
    embedded: parsed.embedded === true,
    scenarios: scenarioList(parsed.scenario ?? 'all'),
    users: positive('--users', parsed.users, MAX_USERS),
    durationMs: duration('--duration', parsed.duration),
    rampUpMs: duration('--ramp-up', parsed['ramp-up']),
    warmUpMs: duration('--warm-up', parsed['warm-up']) ?? 0,
    profile: parsed.profile ?? 'seed',
    itemsPerSecond: positive('--rate', parsed.rate, MAX_RATE),
    ingestKey: key === undefined || key === '' ? undefined : key,
    seedHistory: parsed['no-seed'] !== true
  }
}

/** The default target, used only when no URL was given: this machine's loopback. */
export const DEFAULT_URL = 'http://127.0.0.1:3000'

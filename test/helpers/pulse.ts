import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../shared/config/config.js'
import { type Pulse, type StartOptions, startPulse } from '../../services/runtime.js'
import { sharedDynalite, uniqueEnv } from './shared-services.js'

import { TEST_INGEST_KEY } from './processes.js'

export { TEST_INGEST_KEY }

// The archive client runs in the test's own process: no warning about Node 20 in every file's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

/** The subset of a tap test this helper needs. */
interface Teardown {
  teardown: (fn: () => unknown) => void
}

export interface TestPulse {
  pulse: Pulse
  url: string
  dataDir: string
  /** POSTs a batch of items (JSON) with the test key; returns status and parsed body. */
  post: (items: unknown, headers?: Record<string, string>) => Promise<{ status: number, body: any }>
  /** GETs a path; returns status and parsed body. */
  get: (path: string, headers?: Record<string, string>) => Promise<{ status: number, body: any }>
}

/**
 * Starts a real embedded Pulse (journal, DynamoDB archive, gateway) on a free loopback port
 * in a fresh data directory, torn down with the test. `env` overrides the environment.
 *
 * Its archive is a table of its own (a fresh `PULSE_ENV`) on the dynalite this test file
 * shares (see shared-services.ts): starting embedded mode's own dynalite thread costs about
 * two seconds of CPU each time. A test that sets `DATA_DIR` (to restart on the same data)
 * or `DYNAMODB_ENDPOINT` gets exactly what it asked for: with `DATA_DIR` alone, embedded
 * mode's dynalite thread storing under it, as operators run it.
 */
export async function startTestPulse (t: Teardown, env: Record<string, string> = {}, options: StartOptions = {}): Promise<TestPulse> {
  // Tests post items "now" and read the current bucket: start clear of a minute boundary.
  await clearOfMinuteBoundary(5000)
  const dataDir = env.DATA_DIR ?? await mkdtemp(join(tmpdir(), 'pulse-test-'))
  const archive = env.DATA_DIR !== undefined || env.DYNAMODB_ENDPOINT !== undefined
    ? {}
    : { DYNAMODB_ENDPOINT: (await sharedDynalite()).endpoint, PULSE_ENV: uniqueEnv('e') }
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    DEMO_FEED: '0',
    INGEST_API_KEY: TEST_INGEST_KEY,
    LOG_LEVEL: 'silent',
    RATE_LIMIT_INGEST: '0',
    RATE_LIMIT_READ: '0',
    ...archive,
    ...env
  })
  const pulse = await startPulse(config, options)
  t.teardown(async () => {
    await pulse.close()
    if (env.DATA_DIR === undefined) await rm(dataDir, { recursive: true, force: true })
  })
  const url = pulse.url as string
  // `any`: tests inspect arbitrary JSON bodies.
  const parse = async (res: Response): Promise<{ status: number, body: any }> => {
    const text = await res.text()
    let body: unknown = text
    try { body = JSON.parse(text) } catch {}
    return { status: res.status, body }
  }
  return {
    pulse,
    url,
    dataDir,
    post: async (items, headers = {}) => await parse(await fetch(`${url}/api/v2/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_INGEST_KEY}`, ...headers },
      body: typeof items === 'string' ? items : JSON.stringify(items)
    })),
    get: async (path, headers = {}) => await parse(await fetch(`${url}${path}`, { headers }))
  }
}

/** Polls `check` until it returns a value other than undefined, or fails after `ms`. */
export async function eventually<T> (check: () => Promise<T | undefined> | T | undefined, ms = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/**
 * Waits, if need be, until the current minute has at least `marginMs` left, so a test that
 * posts an item "now" and then reads the current 1m bucket does not straddle a boundary.
 */
export async function clearOfMinuteBoundary (marginMs = 10_000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000)
  if (left < marginMs) await new Promise((resolve) => setTimeout(resolve, left + 50))
}

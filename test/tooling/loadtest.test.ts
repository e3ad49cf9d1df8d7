import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startTestPulse, TEST_INGEST_KEY } from '../helpers/pulse.js'

const RUN = fileURLToPath(new URL('../../load-tests/harness/run.ts', import.meta.url))

/** Runs the harness in its own process, so its clients and the gateway do not share an event loop. */
async function harness (args: string[], env: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', RUN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, stdout, stderr }
}

t.test('the seed scenarios run against an embedded Pulse (100 dashboard users with SSE, history and ingest) and every correctness threshold holds', async (t) => {
  const p = await startTestPulse(t, { MAX_CONNECTIONS: '1000' })
  const run = await harness(['--url', p.url, '--users', '100', '--ramp-up', '3s', '--duration', '15s', '--profile', 'seed'], { INGEST_API_KEY: TEST_INGEST_KEY })
  // 0: every threshold met; 1: some not met. Latency thresholds are figures of the machine
  // the test runs on (shared, perhaps under coverage), not something a test can assert.
  t.ok(run.code === 0 || run.code === 1, `the harness ran to its report (exit ${String(run.code)}; stdout:\n${run.stdout}\nstderr:\n${run.stderr})`)
  for (const threshold of [/^\s+ok\s+checks rate>0\.99\s/m, /^\s+ok\s+cache_hit rate>=0\.8\s/m, /^\s+ok\s+ingest_failed rate<0\.01\s/m]) {
    t.match(run.stdout, threshold, `correctness threshold held: ${threshold.source}`)
  }
  for (const metric of ['resolution_switch_ms', 'snapshot_server_ms', 'live_update_latency_ms', 'sse_update_latency_ms', 'history_latency_ms', 'history_server_ms', 'ingest_latency_ms']) {
    t.match(run.stdout, new RegExp(`^${metric}\\s+[1-9]\\d*\\s`, 'm'), `the table has samples of ${metric}`)
  }
  t.match(run.stdout, /^rate\s+cache_hit\s/m)
  t.match(run.stdout, /^counter\s+ws_events\s+[1-9]/m)
  t.match(run.stdout, /^counter\s+sse_events\s+[1-9]/m)
  t.match(run.stdout, /^(PASS: \d+ thresholds met|FAIL: \d+ of \d+ thresholds not met)$/m, 'the verdict line')
})

t.test('a failing threshold exits non-zero', async (t) => {
  const p = await startTestPulse(t)
  // Nothing is ingested without a key, so live update latency has no samples and fails.
  const run = await harness(['--url', p.url, '--scenario', 'dashboard-ws', '--users', '5', '--ramp-up', '1s', '--duration', '2s'], { INGEST_API_KEY: '' })
  t.equal(run.code, 1, run.stdout)
  t.match(run.stdout, /FAIL\s+live_update_latency_ms p\(95\)<3000\s+no samples/)
})

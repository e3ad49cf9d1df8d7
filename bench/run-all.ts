import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * `npm run bench`: every benchmark in its own process, one after another, so none warms or
 * slows another. Each prints its own table; `BENCH=fold,history` picks some.
 */
const BENCHES = ['fold', 'update-encoding', 'redis-fold', 'archive-writes', 'history', 'publish-latency', 'fanout', 'gateway-churn', 'cluster-ingest']
const chosen = process.env.BENCH === undefined ? BENCHES : process.env.BENCH.split(',')
const root = fileURLToPath(new URL('..', import.meta.url))
let failed = 0
for (const name of chosen) {
  console.log(`\n=== ${name} ===`)
  const result = spawnSync(process.execPath, ['--import', 'tsx', `bench/${name}.bench.ts`], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }
  })
  if (result.status !== 0) {
    failed++
    console.log(`${name} did not finish (exit ${result.status ?? result.signal})`)
  }
}
process.exitCode = failed === 0 ? 0 : 1

// Printed at the end of `npm test`: the suites it leaves out, one line each with the command
// that runs them. A suite is a folder of test/ other than the fast ones (and helpers), so a
// new folder shows up here without editing this file.
import { readdirSync, readFileSync } from 'node:fs'

const FAST = new Set(['unit', 'integration', 'helpers'])
const WHAT = {
  e2e: 'the dashboard in headless Chromium',
  faults: 'fault injection on real processes',
  cluster: 'multi-process Pulse, Redis Cluster, replication, production start',
  chaos: 'seeded faults under load, checked against an independent fold',
  tooling: 'the load-test harness and its definitions',
  soak: 'two minutes of load in both modes: nothing lost, the queue keeps up',
  'open-defects': 'tests of defects still open, which fail some runs; out of test:slow and .ci/run until fixed'
}
const scripts = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).scripts
const test = new URL('../test/', import.meta.url)
const suites = readdirSync(test, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && !FAST.has(entry.name))
  .map((entry) => ({ name: entry.name, files: readdirSync(new URL(`${entry.name}/`, test)).filter((f) => f.endsWith('.test.ts')).length }))
  .filter((suite) => suite.files > 0)
console.log('\nnpm test ran lint, type-check, test/unit and test/integration. Not run (npm run test:slow and npm run test:all run these but test/open-defects):')
for (const { name, files } of suites) {
  const what = WHAT[name] === undefined ? '' : ` (${WHAT[name]})`
  const command = scripts[`test:${name}`] === undefined ? `npx tap --jobs=1 "test/${name}/**/*.test.ts"` : `npm run test:${name}`
  console.log(`  test/${name}, ${files} file${files === 1 ? '' : 's'}${what}: ${command}`)
}

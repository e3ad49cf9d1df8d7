/**
 * Prints line and branch coverage per area of Pulse from c8's `coverage/coverage-summary.json`
 * and exits 1 when a required minimum is missed.
 *
 * Run after c8 (`npm run coverage` does both): `npx tsx scripts/coverage-areas.ts`.
 */
import { readFileSync } from 'node:fs'
import { relative, resolve } from 'node:path'

interface Counts { total: number, covered: number }
interface FileSummary { lines: Counts, branches: Counts }

/** Areas in reading order; a file belongs to the first whose prefix it starts with. */
const AREAS: Array<{ name: string, prefix: string, minLinesPct?: number }> = [
  { name: 'domain', prefix: 'shared/timeseries/', minLinesPct: 90 },
  { name: 'adapters', prefix: 'shared/adapters/' },
  { name: 'shared (other)', prefix: 'shared/' },
  { name: 'gateway', prefix: 'services/gateway/' },
  { name: 'aggregator', prefix: 'services/aggregator/' },
  { name: 'services (other)', prefix: 'services/' },
  { name: 'web', prefix: 'web/src/' }
]

/** Areas c8 cannot see: the dashboard runs only in Chromium (its tests are end-to-end). */
const UNMEASURED: Record<string, string> = { web: 'not measured: runs only in Chromium' }

/** The overall minimum, over the code that runs in Node (every area but `web`). */
const MIN_SERVER_LINES_PCT = 80

const root = resolve(import.meta.dirname, '..')
const summary = JSON.parse(readFileSync(resolve(root, 'coverage/coverage-summary.json'), 'utf8')) as Record<string, FileSummary>

const totals = new Map<string, { lines: Counts, branches: Counts }>()
const add = (name: string, file: FileSummary): void => {
  const sum = totals.get(name) ?? { lines: { total: 0, covered: 0 }, branches: { total: 0, covered: 0 } }
  sum.lines.total += file.lines.total
  sum.lines.covered += file.lines.covered
  sum.branches.total += file.branches.total
  sum.branches.covered += file.branches.covered
  totals.set(name, sum)
}
for (const [path, file] of Object.entries(summary)) {
  if (path === 'total') continue
  const rel = relative(root, path)
  const area = AREAS.find((a) => rel.startsWith(a.prefix))
  if (area === undefined) continue
  add(area.name, file)
  if (area.name !== 'web') add('server (all but web)', file)
}

const pct = (c: Counts): number => c.total === 0 ? 100 : (100 * c.covered) / c.total
const failures: string[] = []
const rows = [...AREAS.map((a) => a.name), 'server (all but web)'].map((name) => {
  const sum = totals.get(name)
  if (sum === undefined) return `${name.padEnd(22)} (${UNMEASURED[name] ?? 'no files'})`
  const area = AREAS.find((a) => a.name === name)
  const min = name === 'server (all but web)' ? MIN_SERVER_LINES_PCT : area?.minLinesPct
  if (min !== undefined && pct(sum.lines) < min) failures.push(`${name}: ${pct(sum.lines).toFixed(1)} % of lines, at least ${min} % required`)
  return `${name.padEnd(22)} ${pct(sum.lines).toFixed(1).padStart(6)} % ${`(${sum.lines.covered}/${sum.lines.total})`.padEnd(14)}` +
    ` ${pct(sum.branches).toFixed(1).padStart(6)} % (${sum.branches.covered}/${sum.branches.total})` +
    (min === undefined ? '' : `   min ${min} % lines`)
})
console.log(`${'area'.padEnd(22)} ${'lines'.padStart(8)} ${''.padEnd(14)} ${'branches'.padStart(8)}`)
for (const row of rows) console.log(row)
if (failures.length > 0) {
  console.error(`Coverage below the minimum:\n  ${failures.join('\n  ')}`)
  process.exitCode = 1
}

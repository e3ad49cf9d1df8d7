/**
 * The soak: Pulse under steady load for a bounded time, embedded and as a cluster of two
 * gateways and two workers on Redis side by side, with a shortened retention so expiry and
 * journal checkpoints happen many times. Prints every sample, then a verdict per mode: every figure
 * flat after the warm-up (growth ≤ 5 %) and nothing lost (the archive and every history equal
 * the fold of the accepted items still within retention). Exits 1 when a verdict fails.
 *
 * Run: `npm run soak` (21 minutes: Redis keys level after 16 at the default scale, and the
 * last minutes judge them; about 25 minutes in all). Settings, all optional:
 * SOAK_MINUTES (21), SOAK_WARMUP_MINUTES (a quarter of it), SOAK_SAMPLE_SECONDS (30),
 * SOAK_MODES (embedded,cluster), SOAK_SEQUENTIAL (1: one mode after the other, 0 by default),
 * SOAK_TICKERS (1000), SOAK_ITEMS_PER_SECOND (40),
 * SOAK_CLIENTS (200), SOAK_RETENTION_SCALE (1440: 1m keeps 15 s, 24h keeps 90 min).
 */
import type { SoakMode } from './topology.js'
import { allFlat, nothingLost, runSoak, type SoakOptions } from './soak.js'

function setting (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`${name} must be a positive number; got ${JSON.stringify(raw)}`)
    process.exit(2)
  }
  return value
}

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
const minutes = setting('SOAK_MINUTES', 21)
const options: SoakOptions = {
  minutes,
  warmupMinutes: setting('SOAK_WARMUP_MINUTES', minutes / 4),
  sampleSeconds: setting('SOAK_SAMPLE_SECONDS', 30),
  tickers: Math.max(2, Math.round(setting('SOAK_TICKERS', 1000))),
  itemsPerSecond: setting('SOAK_ITEMS_PER_SECOND', 40),
  clients: Math.round(setting('SOAK_CLIENTS', 200)),
  retentionScale: Math.round(setting('SOAK_RETENTION_SCALE', 1440)),
  concurrent: process.env.SOAK_SEQUENTIAL !== '1',
  log: (line) => console.error(line)
}
const modes = (process.env.SOAK_MODES ?? 'embedded,cluster').split(',').map((m) => m.trim()).filter((m) => m !== '')
if (modes.length === 0 || modes.some((m) => m !== 'embedded' && m !== 'cluster')) {
  console.error(`SOAK_MODES must list embedded and/or cluster; got ${JSON.stringify(process.env.SOAK_MODES)}`)
  process.exit(2)
}

const results = await runSoak(modes as SoakMode[], options)
let failed = false
for (const result of results) {
  const flat = allFlat(result)
  const kept = nothingLost(result)
  failed ||= !flat || !kept
  console.log(`\n${result.report}\n\nVERDICT ${result.mode}: ${flat ? 'flat' : 'NOT FLAT'}, ${kept ? 'nothing lost' : 'LOST OR WRONG DATA'} → ${flat && kept ? 'PASS' : 'FAIL'}`)
}
process.exit(failed ? 1 : 0)

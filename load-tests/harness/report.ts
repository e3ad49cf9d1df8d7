import type { Metrics } from './metrics.js'
import type { ThresholdResult } from './thresholds.js'

/** What the header of the report says about the run. */
export interface RunSummary {
  url: string
  profile: string
  scenarios: string[]
  users: Record<string, number>
  seconds: number
  itemsPerSecond: number | undefined
}

function fixed (value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)
}

function row (cells: string[], widths: number[]): string {
  return cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)).join('  ')
}

/** Formats the run as plain text: a latency table, rates, counters, thresholds, verdict. */
export function formatReport (summary: RunSummary, metrics: Metrics, results: ThresholdResult[]): string {
  const lines: string[] = []
  const who = Object.entries(summary.users).map(([name, n]) => `${name} ${n}`).join(', ')
  lines.push(`Pulse load test: profile ${summary.profile}, ${summary.url}, ${Math.round(summary.seconds)} s`)
  lines.push(`users: ${who === '' ? 'none' : who}${summary.itemsPerSecond === undefined ? ', no ingest' : `, ingest ${summary.itemsPerSecond} items/s`}`)
  lines.push('')
  const widths = [24, 8, 9, 9, 9, 9]
  lines.push(row(['metric (ms)', 'count', 'p50', 'p95', 'p99', 'max'], widths))
  const names = [...metrics.all.keys()].sort()
  for (const name of names) {
    const metric = metrics.all.get(name)
    if (metric?.kind !== 'trend') continue
    const cells = metric.count === 0
      ? [name, '0', '-', '-', '-', '-']
      : [name, String(metric.count), fixed(metric.percentile(50)), fixed(metric.percentile(95)), fixed(metric.percentile(99)), fixed(metric.max)]
    lines.push(row(cells, widths))
  }
  lines.push('')
  for (const name of names) {
    const metric = metrics.all.get(name)
    if (metric?.kind === 'rate') lines.push(`rate     ${name.padEnd(22)} ${metric.rate.toFixed(4)}  (${metric.passes}/${metric.count})`)
  }
  for (const name of names) {
    const metric = metrics.all.get(name)
    if (metric?.kind === 'counter') lines.push(`counter  ${name.padEnd(22)} ${metric.count}`)
  }
  if (metrics.failures.size > 0) {
    lines.push('')
    lines.push('failed checks:')
    for (const [name, examples] of metrics.failures) lines.push(`  ${name}${examples.length > 0 ? `: ${examples.join('; ')}` : ''}`)
  }
  lines.push('')
  lines.push('thresholds:')
  for (const result of results) {
    const value = result.value === undefined ? 'no samples' : fixed(result.value)
    lines.push(`  ${result.ok ? 'ok  ' : 'FAIL'}  ${`${result.metric} ${result.expression}`.padEnd(40)} ${value}`)
  }
  const failed = results.filter((result) => !result.ok).length
  lines.push('')
  lines.push(failed === 0 ? `PASS: ${results.length} thresholds met` : `FAIL: ${failed} of ${results.length} thresholds not met`)
  return lines.join('\n')
}

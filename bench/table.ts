import * as hdr from 'hdr-histogram-js'

/** A latency histogram in microseconds, reported in milliseconds. */
export function latencyHistogram (): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })
}

export function ms (histogram: hdr.Histogram, percentile: number): string {
  return (histogram.getValueAtPercentile(percentile) / 1000).toFixed(3)
}

/** Prints rows as an aligned text table. */
export function printTable (title: string, rows: Array<Record<string, string | number>>): void {
  console.log(`\n${title}`)
  if (rows.length === 0) return
  const columns = Object.keys(rows[0] as object)
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)))
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padStart(widths[i] as number)).join('  ')
  console.log(line(columns))
  for (const row of rows) console.log(line(columns.map((c) => String(row[c]))))
}

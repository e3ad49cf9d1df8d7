import * as hdr from 'hdr-histogram-js'

/** Values are recorded in microseconds so sub-millisecond server times keep their precision. */
const MICROS = 1000

/** A latency distribution (k6 `Trend`) backed by an HDR histogram, in milliseconds. */
export class Trend {
  readonly kind = 'trend'
  private readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, autoResize: true })

  add (ms: number): void {
    if (!Number.isFinite(ms)) return
    this.histogram.recordValue(Math.max(0, Math.round(ms * MICROS)))
  }

  get count (): number { return this.histogram.totalCount }
  /** Value at percentile `p` (0-100), ms. */
  percentile (p: number): number { return this.histogram.getValueAtPercentile(p) / MICROS }
  get max (): number { return this.histogram.maxValue / MICROS }
  get min (): number { return this.count === 0 ? 0 : this.histogram.minNonZeroValue / MICROS }
  get mean (): number { return this.histogram.mean / MICROS }
}

/** A share of true samples (k6 `Rate`). */
export class Rate {
  readonly kind = 'rate'
  passes = 0
  count = 0

  add (ok: boolean): void {
    this.count++
    if (ok) this.passes++
  }

  get rate (): number { return this.count === 0 ? 0 : this.passes / this.count }
}

/** A running total (k6 `Counter`). */
export class Counter {
  readonly kind = 'counter'
  count = 0

  add (n = 1): void { this.count += n }
}

export type Metric = Trend | Rate | Counter

/** The metrics of one run, by k6 name, created on first use. */
export class Metrics {
  readonly all = new Map<string, Metric>()
  /** Up to a few examples of each failed check, for the report. */
  readonly failures = new Map<string, string[]>()

  trend (name: string): Trend { return this.get(name, Trend) }
  rate (name: string): Rate { return this.get(name, Rate) }
  counter (name: string): Counter { return this.get(name, Counter) }

  /** Records a check (k6 `check`): feeds the `checks` rate and keeps a few failure examples. */
  check (name: string, ok: boolean, detail?: string): boolean {
    this.rate('checks').add(ok)
    if (!ok) {
      const examples = this.failures.get(name) ?? []
      if (examples.length < 3 && detail !== undefined) examples.push(detail)
      this.failures.set(name, examples)
    }
    return ok
  }

  /** The metric `name`, made on first use; called per event, so a lookup makes nothing. */
  private get<T extends Metric> (name: string, Kind: new () => T): T {
    let metric = this.all.get(name)
    if (metric === undefined) {
      metric = new Kind()
      this.all.set(name, metric)
    }
    if (!(metric instanceof Kind)) throw new Error(`metric ${name} is a ${metric.kind}`)
    return metric
  }
}

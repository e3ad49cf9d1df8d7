import type { Metric } from './metrics.js'

/** One threshold expression in k6 syntax (`p(95)<100`, `rate>=0.8`, `count<1`, `avg<50`). */
export interface Threshold {
  metric: string
  expression: string
  aggregate: string
  operator: string
  bound: number
}

/** The outcome of one threshold against the samples of a run. */
export interface ThresholdResult extends Threshold {
  /** The aggregate's value; undefined when the metric got no samples. */
  value: number | undefined
  ok: boolean
}

const EXPRESSION = /^\s*(avg|min|max|med|count|rate|p\(\d+(?:\.\d+)?\))\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/

/** Parses a k6 threshold expression; throws on anything k6 would not accept. */
export function parseThreshold (metric: string, expression: string): Threshold {
  const match = EXPRESSION.exec(expression)
  if (match === null) throw new Error(`threshold ${metric}: cannot parse ${JSON.stringify(expression)}`)
  return { metric, expression, aggregate: match[1] as string, operator: match[2] as string, bound: Number(match[3]) }
}

function aggregateOf (metric: Metric, aggregate: string): number | undefined {
  if (metric.kind === 'counter') return aggregate === 'count' ? metric.count : undefined
  if (metric.kind === 'rate') return aggregate === 'rate' ? (metric.count === 0 ? undefined : metric.rate) : undefined
  if (metric.count === 0) return undefined
  if (aggregate.startsWith('p(')) return metric.percentile(Number(aggregate.slice(2, -1)))
  switch (aggregate) {
    case 'avg': return metric.mean
    case 'min': return metric.min
    case 'max': return metric.max
    case 'med': return metric.percentile(50)
    default: return undefined
  }
}

function compare (value: number, operator: string, bound: number): boolean {
  switch (operator) {
    case '<': return value < bound
    case '<=': return value <= bound
    case '>': return value > bound
    case '>=': return value >= bound
    case '!=': return value !== bound
    default: return value === bound
  }
}

/**
 * Evaluates thresholds. Stricter than k6 on one point: a thresholded metric that got no
 * samples fails (k6 skips it), because here it means a scenario silently did nothing —
 * e.g. no live update ever arrived.
 */
export function evaluate (thresholds: Threshold[], metrics: ReadonlyMap<string, Metric>): ThresholdResult[] {
  return thresholds.map((threshold) => {
    const metric = metrics.get(threshold.metric)
    const value = metric === undefined ? undefined : aggregateOf(metric, threshold.aggregate)
    return { ...threshold, value, ok: value !== undefined && compare(value, threshold.operator, threshold.bound) }
  })
}

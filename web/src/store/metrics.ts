import type { Resolution } from './model.js'

/** One resolution switch, as SPEC §5 records it. */
export interface SwitchMetric {
  resolution: Resolution
  ms: number
  source: 'memory' | 'idb' | 'network'
}

/** Figures the page exposes on `window.__pulseMetrics` for tests and load tools. */
export interface PulseMetrics {
  switches: SwitchMetric[]
  /** The first chart drawn after load: where its data came from and when (ms since navigation). */
  firstDraw?: { source: 'idb' | 'network', at: number, bars: number }
  /** Bucket events received from the stream. */
  events: number
  /** Series written to IndexedDB. */
  cacheWrites: number
  /** Renders of the app shell, to spot storms. */
  renders: number
  /** Series the gateway holds for this page's stream, as its last `subscribed` reply said. */
  subscriptions: number
  /** The most it ever held. */
  maxSubscriptions: number
}

declare global {
  interface Window {
    __pulseMetrics: PulseMetrics
  }
}

/** The page's metrics object, created on first use. */
export function pulseMetrics (): PulseMetrics {
  window.__pulseMetrics ??= { switches: [], events: 0, cacheWrites: 0, renders: 0, subscriptions: 0, maxSubscriptions: 0 }
  return window.__pulseMetrics
}

let switchCounter = 0

/**
 * Starts timing a switch; the returned function ends it with the source that answered
 * and records it both as a `performance.measure` and in `__pulseMetrics.switches`.
 */
export function startSwitch (resolution: Resolution): (source: SwitchMetric['source']) => SwitchMetric {
  const name = `pulse-switch-${++switchCounter}`
  performance.mark(`${name}-start`)
  return (source) => {
    performance.mark(`${name}-end`)
    const measure = performance.measure(`pulse-switch ${resolution}`, `${name}-start`, `${name}-end`)
    performance.clearMarks(`${name}-start`)
    performance.clearMarks(`${name}-end`)
    const metric = { resolution, ms: Math.round(measure.duration * 100) / 100, source }
    pulseMetrics().switches.push(metric)
    return metric
  }
}

import type { PulseAdapters } from './adapters.js'
import type { ReadinessReport } from './gateway/context.js'
import type { DrainState } from './gateway/plugins/drain.js'

/** How long each dependency may take to answer a readiness check. */
export const READINESS_TIMEOUT_MS = 2000

async function answer (check: Promise<unknown>, ms: number): Promise<'ok' | string> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([check, new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms) })])
    return 'ok'
  } catch (err) {
    return (err as Error).message
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Checks hot state, queue, archive and bus in parallel, each with a timeout; while the
 * process drains it also reports `process: shutting down`, so load balancers stop routing.
 */
export function readinessCheck (adapters: PulseAdapters, drain: DrainState, timeoutMs = READINESS_TIMEOUT_MS): () => Promise<ReadinessReport> {
  const { hot, queue, archive, bus } = adapters
  return async () => {
    const [h, q, a, b] = await Promise.all([hot.ping(), queue.ping(), archive.ping(), bus.ping()].map(async (p) => await answer(p, timeoutMs)))
    const report: ReadinessReport = { hot_state: h as string, queue: q as string, archive: a as string, bus: b as string }
    if (drain.draining) report.process = 'shutting down'
    return report
  }
}

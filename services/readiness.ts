import type { PulseAdapters } from './adapters.js'
import { admission, type AdmissionLimits } from './gateway/admission.js'
import type { ReadinessReport } from './gateway/context.js'
import type { DrainState } from './gateway/plugins/drain.js'

/** How long each dependency may take to answer a readiness check. */
export const READINESS_TIMEOUT_MS = 2000

/** What `/readyz` reports for an archive that does not answer: the process still serves. */
export const ARCHIVE_DEGRADED = 'degraded'

/**
 * Checks that decide readiness. The archive is not one of them: a DynamoDB outage must not
 * take every gateway and worker out of the load balancer at once (the hot state serves
 * recent history and write-behind keeps buckets dirty until the archive is back), so it is
 * reported as {@link ARCHIVE_DEGRADED} instead.
 */
const ADVISORY_CHECKS = new Set(['archive', 'ingest'])

/** Resolves `ok` when `check` settles in time, else the reason it did not. */
export async function answer (check: Promise<unknown>, ms: number): Promise<'ok' | string> {
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

/** Whether a report means "can serve": every check but the advisory ones is `ok`. */
export function isReady (report: ReadinessReport): boolean {
  return Object.entries(report).every(([check, value]) => value === 'ok' || ADVISORY_CHECKS.has(check))
}

/**
 * Checks hot state, queue, archive and bus in parallel, each with a timeout; while the
 * process drains it also reports `process: shutting down`, so load balancers stop routing.
 *
 * With `limits`, a backlog past them is reported as `ingest: backlog full: …` (ingest
 * answers 503 meanwhile). It is advisory like the archive: the backlog is shared by every
 * gateway of the queue, so failing readiness for it would take them all out of the load
 * balancer at once, streams and history with them, while only ingest needs to wait.
 */
export function readinessCheck (adapters: PulseAdapters, drain: DrainState, timeoutMs = READINESS_TIMEOUT_MS, limits?: AdmissionLimits): () => Promise<ReadinessReport> {
  const { hot, queue, archive, bus } = adapters
  return async () => {
    const [h, q, a, b] = await Promise.all([hot.ping(), queue.ping(), archive.ping(), bus.ping(), queue.refreshBacklog()].map(async (p) => await answer(p, timeoutMs)))
    const report: ReadinessReport = { hot_state: h as string, queue: q as string, archive: a === 'ok' ? 'ok' : ARCHIVE_DEGRADED, bus: b as string }
    const admitted = limits === undefined ? undefined : admission(queue, limits)
    if (admitted?.reason !== undefined) report.ingest = admitted.reason
    if (drain.draining) report.process = 'shutting down'
    return report
  }
}

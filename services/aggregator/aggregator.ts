import type { Logger } from 'pino'
import type { Config } from '../../shared/config/config.js'
import { faultPoint } from '../../shared/fault-points.js'
import type { PulseAdapters } from '../adapters.js'
import { Finalizer } from './finalizer.js'
import { foldBatch, type FoldReport } from './fold-batch.js'
import { WriteBehind } from './write-behind.js'

/** Observes each fold (metrics). */
export interface AggregatorHooks {
  onFolded?: (report: FoldReport, items: number, seconds: number) => void
}

export interface Aggregator {
  writeBehind: WriteBehind
  finalizer: Finalizer
  /** Stops taking batches, finishes the one in hand, flushes dirty buckets. */
  stop: () => Promise<void>
}

/**
 * The worker role: folds queued batches into the hot state (each fold publishes its
 * changes), writes changed buckets behind to the archive, and finalizes ended buckets every minute
 * (once cluster-wide where the adapters can schedule that).
 */
export async function startAggregator (adapters: PulseAdapters, config: Config, log: Logger, now: () => number = Date.now, hooks: AggregatorHooks = {}): Promise<Aggregator> {
  const { queue, hot, archive, bus } = adapters
  const afterFlush = adapters.afterFlush
  const writeBehind = new WriteBehind({
    hot,
    archive,
    log: log.child({ part: 'write-behind' }),
    flushIntervalMs: config.flushIntervalMs,
    stepTimeoutMs: config.flushLeaseMs,
    // The embedded journal's checkpoint follows the oldest change not yet in the archive, so
    // embedded mode writes every change each interval (its archive is a local dynalite):
    // the checkpoint then trails ingest by about one interval.
    ...(afterFlush === undefined ? {} : { onFlushed: async () => await afterFlush(), cadenceMs: {} })
  })
  const finalizer = new Finalizer({ hot, bus, tickers: () => adapters.tickers.current().readable(now()), log: log.child({ part: 'finalizer' }), now })
  writeBehind.start()
  let stopSchedule: () => Promise<void>
  if (adapters.scheduleRepeatable !== undefined) {
    const job = await adapters.scheduleRepeatable('finalizer', 60_000, async () => { await finalizer.runOnce(now()) })
    stopSchedule = async () => await job.close()
  } else {
    finalizer.start()
    stopSchedule = async () => finalizer.stop()
  }

  await queue.consume(async (batch) => {
    const jobLog = log.child({ jobId: batch.id })
    const began = performance.now()
    // A batch taken but not folded yet: a replayed journal at start, a slow fold.
    await faultPoint('aggregator.before-fold')
    let report: FoldReport
    try {
      report = await foldBatch({ hot, archive, now }, batch)
    } catch (err) {
      jobLog.warn({ err }, 'fold failed; the batch will be retried')
      throw err
    }
    hooks.onFolded?.(report, batch.items.length, (performance.now() - began) / 1000)
    jobLog.debug({ items: batch.items.length, changed: report.changed.length, duplicates: report.duplicates }, 'folded')
  })

  return {
    writeBehind,
    finalizer,
    stop: async () => {
      await stopSchedule()
      // Stop taking batches first (the one in hand finishes), so the last flush sees every fold.
      await queue.close()
      await writeBehind.stop()
    }
  }
}

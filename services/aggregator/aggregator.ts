import type { Logger } from 'pino'
import type { Config } from '../../shared/config/config.js'
import type { PulseAdapters } from '../adapters.js'
import { foldBatch } from './fold-batch.js'

export interface Aggregator {
  stop: () => Promise<void>
}

/** The worker role: folds queued batches into the hot state and publishes the changes. */
export async function startAggregator (adapters: PulseAdapters, _config: Config, log: Logger, now: () => number = Date.now): Promise<Aggregator> {
  const { queue, hot, archive, bus } = adapters
  await queue.consume(async (batch) => {
    const report = await foldBatch({ hot, archive, bus, now }, batch)
    log.debug({ batch: batch.id, items: batch.items.length, changed: report.changed.length, duplicates: report.duplicates }, 'folded')
  })
  return {
    stop: async () => {}
  }
}

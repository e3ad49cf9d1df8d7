import type { Logger } from 'pino'
import type { Config } from '../shared/config/config.js'
import type { Archive, Bus, HotState, IngestQueue } from '../shared/ports/index.js'

/** The adapters of one mode, behind the ports every role uses. */
export interface PulseAdapters {
  mode: 'embedded' | 'cluster'
  queue: IngestQueue
  hot: HotState
  bus: Bus
  archive: Archive
  /** Called after write-behind flushes (the embedded journal checkpoints here). */
  afterFlush?: () => Promise<void>
  /** Runs `fn` every `everyMs` once across the cluster; unset: each process runs its own timer. */
  scheduleRepeatable?: (name: string, everyMs: number, fn: () => Promise<void>) => Promise<{ close: () => Promise<void> }>
  close: () => Promise<void>
}

/** Embedded adapters when `REDIS_URL` is unset, cluster adapters when it is set. */
export async function createAdapters (config: Config, log: Logger): Promise<PulseAdapters> {
  if (config.redisUrl === undefined) {
    const { createEmbeddedAdapters } = await import('./embedded-adapters.js')
    return await createEmbeddedAdapters(config, log)
  }
  const { createClusterAdapters } = await import('./cluster-adapters.js')
  return await createClusterAdapters(config, log)
}

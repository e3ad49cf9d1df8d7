import type { Config } from '../../shared/config/config.js'
import type { Archive, Bus, HotState, IngestQueue } from '../../shared/ports/index.js'
import type { PulseMetrics } from '../metrics.js'
import type { SecretSet } from './plugins/auth.js'
import type { SeriesCache } from './series-cache.js'

/** A dependency's readiness: `ok`, or why not. */
export type ReadinessReport = Record<string, 'ok' | string>

/** What the gateway is built from: configuration and the adapters of its mode. */
export interface GatewayContext {
  config: Config
  queue: IngestQueue
  hot: HotState
  archive: Archive
  bus: Bus
  cache: SeriesCache
  ingestKeys: SecretSet
  now: () => number
  /** Checks every dependency with a timeout. */
  readiness: () => Promise<ReadinessReport>
  /** The process's metrics; unset in apps built without them (some tests). */
  metrics?: PulseMetrics | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    pulse: GatewayContext
  }
}

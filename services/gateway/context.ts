import type { Config } from '../../shared/config/config.js'
import type { Archive } from '../../shared/ports/archive.js'
import type { Bus } from '../../shared/ports/bus.js'
import type { HotState } from '../../shared/ports/hot-state.js'
import type { IngestQueue } from '../../shared/ports/ingest-queue.js'
import type { TickerRegistry } from '../../shared/ports/ticker-registry.js'
import type { PulseMetrics } from '../metrics.js'
import type { ProducerKeys } from './access/producers.js'
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
  /** The tickers served: {@link TickerRegistry.current} answers without I/O. */
  tickers: TickerRegistry
  cache: SeriesCache
  /** The ingest keys and the producers they stand for. */
  ingestKeys: ProducerKeys
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

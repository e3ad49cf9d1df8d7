import type { Logger } from 'pino'
import type { Config } from '../shared/config/config.js'
import type { PulseAdapters } from './adapters.js'

/** Cluster mode: Redis hot state, pub/sub and BullMQ queue; DynamoDB archive. */
export async function createClusterAdapters (_config: Config, _log: Logger): Promise<PulseAdapters> {
  throw new Error('REDIS_URL is set, but cluster mode is not available in this build')
}

import { join } from 'node:path'
import type { Logger } from 'pino'
import { DynamoArchive } from '../shared/adapters/dynamo/dynamo-archive.js'
import { EmbeddedArchive } from '../shared/adapters/dynamo/embedded-dynamo.js'
import { tableName } from '../shared/adapters/dynamo/table.js'
import { JournalQueue } from '../shared/adapters/journal/journal-queue.js'
import { MemoryBus } from '../shared/adapters/memory/memory-bus.js'
import { MemoryHotState } from '../shared/adapters/memory/memory-hot-state.js'
import type { Config } from '../shared/config/config.js'
import type { PulseAdapters } from './adapters.js'

/**
 * Embedded mode: a journal on disk as the queue, hot state and bus in memory, and the
 * archive on DynamoDB — dynalite under `DATA_DIR`, with the archive client, in a thread of
 * its own, unless `DYNAMODB_ENDPOINT` names another endpoint.
 */
export async function createEmbeddedAdapters (config: Config, log: Logger): Promise<PulseAdapters> {
  const table = tableName(config.env)
  const archive = config.dynamodbEndpoint === undefined
    ? await EmbeddedArchive.start({ dir: join(config.dataDir, 'dynalite'), tableName: table, region: config.awsRegion })
    : await DynamoArchive.open({ region: config.awsRegion, endpoint: config.dynamodbEndpoint, tableName: table })
  const hot = new MemoryHotState({ dedupeWindowMs: config.dedupeWindowMs })
  const bus = new MemoryBus()
  const queue = await JournalQueue.open({
    dir: join(config.dataDir, 'journal'),
    retainMs: config.dedupeWindowMs,
    onError: (err, batch) => log.warn({ err, batch: batch.id }, 'fold failed; retrying')
  })
  const sweeper = setInterval(() => hot.sweep(Date.now()), 60_000)
  sweeper.unref()
  return {
    mode: 'embedded',
    queue,
    hot,
    bus,
    archive,
    afterFlush: async () => {
      // Everything folded before a flush that left nothing dirty is in the archive.
      const folded = queue.foldedSeq
      if (await hot.dirtyCount() === 0) await queue.checkpoint(folded)
    },
    close: async () => {
      clearInterval(sweeper)
      await queue.close()
      await bus.close()
      await archive.close()
    }
  }
}

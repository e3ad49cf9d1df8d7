import { join } from 'node:path'
import type { Logger } from 'pino'
import { createDynamoClients, isLocalEndpoint } from '../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../shared/adapters/dynamo/dynamo-archive.js'
import { startDynalite } from '../shared/adapters/dynamo/dynalite-server.js'
import { ensureTable, tableName } from '../shared/adapters/dynamo/table.js'
import { JournalQueue } from '../shared/adapters/journal/journal-queue.js'
import { MemoryBus } from '../shared/adapters/memory/memory-bus.js'
import { MemoryHotState } from '../shared/adapters/memory/memory-hot-state.js'
import type { Config } from '../shared/config/config.js'
import type { PulseAdapters } from './adapters.js'

/**
 * Embedded mode: a journal on disk as the queue, hot state and bus in memory, and the
 * archive on DynamoDB — dynalite in-process under `DATA_DIR` unless `DYNAMODB_ENDPOINT`
 * names another endpoint.
 */
export async function createEmbeddedAdapters (config: Config, log: Logger): Promise<PulseAdapters> {
  const dynalite = config.dynamodbEndpoint === undefined
    ? await startDynalite({ dir: join(config.dataDir, 'dynalite') })
    : undefined
  const endpoint = config.dynamodbEndpoint ?? dynalite?.endpoint
  const { client, doc } = createDynamoClients({ region: config.awsRegion, endpoint })
  const table = tableName(config.env)
  await ensureTable(client, table, { local: isLocalEndpoint(endpoint) })
  const archive = new DynamoArchive({ client: doc, tableName: table, ownsClient: true })
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
      await dynalite?.close()
    }
  }
}

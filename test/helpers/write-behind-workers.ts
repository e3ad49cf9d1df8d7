import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { createDynamoClients } from '../../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../../shared/adapters/dynamo/dynamo-archive.js'
import { startDynalite } from '../../shared/adapters/dynamo/embedded-dynamo.js'
import { ensureTable, tableName } from '../../shared/adapters/dynamo/table.js'
import { RedisKeys } from '../../shared/adapters/redis/keys.js'
import { RedisBus } from '../../shared/adapters/redis/redis-bus.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import { type ScoredItem, labelFor } from '../../shared/timeseries/bucket.js'
import { foldBatch } from '../../services/aggregator/fold-batch.js'
import { WriteBehind } from '../../services/aggregator/write-behind.js'
import { startRedisServer } from './redis-server.js'

/*
 * Several write-behinds (and finalizers) of one cluster, in this process: one real Redis and
 * one dynalite for the file, a fresh key prefix and table per cluster.
 */

const quiet = { warn: () => {}, debug: () => {} }
let ids = 0

/** An item with a fresh id. */
export function item (ticker: string, ts: number, score = 0.25, source = 'tiingo'): ScoredItem {
  return { id: `i${ids++}`, ticker, ts, score, label: labelFor(score), source }
}

/** Waits for a condition, polling; fails the test if it never holds. */
export async function until (t: Test, what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return
    await sleep(25)
  }
  t.fail(`timed out waiting: ${what}`)
}

/** Options of one worker's write-behind and hot state. */
export interface WorkerOptions { flushLeaseMs?: number, roundSize?: number, parkBaseMs?: number }

/** Starts this file's Redis and dynalite (stopped at the end of `t`); returns how to make clusters and workers on them. */
export async function startWriteBehindServices (t: Test) {
  const redisServer = await startRedisServer(t)
  const dynalite = await startDynalite()
  t.teardown(dynalite.close)
  const dynamo = createDynamoClients({ region: 'us-east-1', endpoint: dynalite.endpoint })
  t.teardown(() => dynamo.client.destroy())
  const admin = new Redis(redisServer.url)
  t.teardown(() => admin.quit())

  /** One worker's side: its own Redis connection, archive client and write-behind. */
  const worker = (t: Test, env: string, table: string, options: WorkerOptions = {}) => {
    const hot = new RedisHotState({ connection: redisServer.url, env, dedupeWindowMs: 86_400_000, flushLeaseMs: options.flushLeaseMs ?? 60_000 })
    t.teardown(() => hot.close())
    // Where the worker's folds publish their changes.
    const bus = new RedisBus({ url: redisServer.url, env })
    t.teardown(() => bus.close())
    const archive = new DynamoArchive({ client: dynamo.doc, tableName: table })
    const { roundSize, parkBaseMs } = options
    const writeBehind = new WriteBehind({
      hot,
      archive,
      log: quiet,
      flushIntervalMs: 60_000,
      ...(roundSize === undefined ? {} : { roundSize }),
      ...(parkBaseMs === undefined ? {} : { parkBaseMs })
    })
    const fold = async (items: ScoredItem[]) => await foldBatch({ hot, archive, now: Date.now }, { id: `b${ids++}`, acceptedAt: Date.now(), items })
    return { hot, archive, bus, writeBehind, fold }
  }

  /** A fresh cluster: its key prefix, table and Redis keys. */
  const newCluster = async () => {
    const env = `t${randomUUID().slice(0, 8)}`
    const table = tableName(env)
    await ensureTable(dynamo.client, table, { local: true })
    return { env, table, keys: new RedisKeys(env) }
  }

  return { admin, worker, newCluster }
}

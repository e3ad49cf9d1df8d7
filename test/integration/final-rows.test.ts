import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { GetCommand } from '@aws-sdk/lib-dynamodb'
import t from 'tap'
import { createDynamoClients } from '../../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../../shared/adapters/dynamo/dynamo-archive.js'
import { startDynalite } from '../../shared/adapters/dynamo/embedded-dynamo.js'
import { ensureTable, tableName } from '../../shared/adapters/dynamo/table.js'
import { MemoryBus } from '../../shared/adapters/memory/memory-bus.js'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import { RedisHotState } from '../../shared/adapters/redis/index.js'
import type { HotState } from '../../shared/ports/hot-state.js'
import { labelFor } from '../../shared/timeseries/bucket.js'
import { bucketEnd, bucketStart, toIsoSecond } from '../../shared/timeseries/resolutions.js'
import { foldBatch } from '../../services/aggregator/fold-batch.js'
import { Finalizer } from '../../services/aggregator/finalizer.js'
import { WriteBehind } from '../../services/aggregator/write-behind.js'
import { clearOfMinuteBoundary } from '../helpers/pulse.js'
import { startRedisServer } from '../helpers/redis-server.js'

const quiet = { warn: () => {}, debug: () => {} }

/**
 * The archive is what other systems read: a bucket whose row was written while it was
 * open must read `is_partial: false` once it has ended and the finalizer ran, with the
 * same rev (nothing changed) and without a refused write. Real time, real dynalite: the
 * test waits for the current minute to end.
 */
t.test('an ended bucket written while open gets a final row, in both hot states', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-final-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const dynalite = await startDynalite({ dir })
  t.teardown(() => dynalite.close())
  const { client, doc } = createDynamoClients({ region: 'us-east-1', endpoint: dynalite.endpoint })
  t.teardown(() => client.destroy())
  const redis = await startRedisServer(t)

  const cases: Array<{ name: string, hot: HotState }> = [
    { name: 'memory', hot: new MemoryHotState({ dedupeWindowMs: 86_400_000, createdAt: Date.now() - 3_600_000 }) },
    { name: 'redis', hot: new RedisHotState({ connection: redis.url, env: 'final', dedupeWindowMs: 86_400_000 }) }
  ]
  for (const { hot } of cases) t.teardown(() => hot.close())

  await clearOfMinuteBoundary(8000)
  const now = Date.now()
  const start = bucketStart(now, '1m')
  const end = bucketEnd(start, '1m')
  const runs = await Promise.all(cases.map(async ({ name, hot }) => {
    const table = tableName(`final${name}`)
    await ensureTable(client, table, { local: true })
    const archive = new DynamoArchive({ client: doc, tableName: table })
    const bus = new MemoryBus()
    const writeBehind = new WriteBehind({ hot, archive, log: quiet, flushIntervalMs: 1000 })
    const finalizer = new Finalizer({ hot, bus, tickers: ['AAPL'], log: quiet })
    await foldBatch({ hot, archive, now: Date.now }, {
      id: `${name}-1`,
      acceptedAt: now,
      items: [{ id: 'only', ticker: 'AAPL', ts: now, score: 0.5, label: labelFor(0.5), source: 'tiingo' }]
    })
    await writeBehind.flushNow()
    const row = async (): Promise<Record<string, unknown> | undefined> =>
      (await doc.send(new GetCommand({ TableName: table, Key: { PK: 'AAPL#1m', SK: toIsoSecond(start) }, ConsistentRead: true }))).Item
    return { name, archive, writeBehind, finalizer, row }
  }))
  const openRevs = new Map<string, unknown>()
  for (const run of runs) {
    const open = await run.row()
    t.equal(open?.is_partial, true, `${run.name}: written while open, the row is partial`)
    openRevs.set(run.name, open?.rev)
  }

  await sleep(end - Date.now() + 200)
  for (const run of runs) {
    const report = await run.finalizer.runOnce(Date.now())
    t.ok(report.finalized >= 1, `${run.name}: the finalizer covered the ended bucket`)
    await run.writeBehind.flushNow()
    const row = await run.row()
    t.equal(row?.is_partial, false, `${run.name}: after its end and the finalizer, the row is final`)
    t.equal(row?.rev, openRevs.get(run.name), `${run.name}: same rev, nothing changed but the flag`)
    t.equal(run.archive.stats.superseded, 0, `${run.name}: no write was refused as superseded`)

    // Finalizing the same window again finds the row final already: no write at all.
    const calls = run.archive.stats.writeCalls
    await run.finalizer.runOnce(Date.now(), end - 120_000)
    await run.writeBehind.flushNow()
    t.equal(run.archive.stats.writeCalls, calls, `${run.name}: a bucket whose row is final is not written again`)
  }
})

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ScanCommand } from '@aws-sdk/lib-dynamodb'
import t from 'tap'
import { createDynamoClients } from '../../shared/adapters/dynamo/client.js'
import { EmbeddedArchive } from '../../shared/adapters/dynamo/embedded-dynamo.js'
import { type BucketRef } from '../../shared/timeseries/keys.js'
import { bucketStart, type Resolution, ttlSeconds } from '../../shared/timeseries/resolutions.js'
import { oneItemBucket } from '../helpers/items.js'

const HOUR = 3_600_000
const TABLE = 'test-sentiment-timeseries'

t.test('the embedded archive deletes rows whose ttl has passed, a bounded page per round, and counts them', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-expiry-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const archive = await EmbeddedArchive.start({ dir, tableName: TABLE, region: 'us-east-1', expiryEveryMs: 0, expiryPageSize: 2 })
  t.teardown(async () => await archive.close())
  const { doc } = createDynamoClients({ region: 'us-east-1', endpoint: archive.endpoint })
  t.teardown(() => doc.destroy())

  const now = Date.now()
  const ref = (resolution: Resolution, at: number): BucketRef => ({ ticker: 'AAPL', resolution, start: bucketStart(at, resolution) })
  // 1m buckets are kept 6 h after their end, 5m 12 h, 24h 90 days.
  const expired = [ref('1m', now - 8 * HOUR), ref('1m', now - 7 * HOUR), ref('5m', now - 13 * HOUR)]
  const kept = [ref('1m', now), ref('1m', now - 5 * HOUR), ref('24h', now - 10 * 24 * HOUR)]
  const outcome = await archive.put([...expired, ...kept].map((r) => oneItemBucket(r, { ts: r.start, id: `i${r.start}` })))
  t.equal(outcome.written.length, 6, 'all six rows written (the table takes expired rows; reads filter them)')
  t.ok(expired.every((r) => ttlSeconds(r.start, r.resolution) < Math.floor(now / 1000)), 'three of them are past their ttl')

  const rows = async (): Promise<string[]> => {
    const out = await doc.send(new ScanCommand({ TableName: TABLE }))
    return (out.Items ?? []).map((item) => `${String(item.PK)}/${String(item.SK)}`).sort()
  }
  t.equal((await rows()).length, 6, 'before a sweep the table holds all six rows')

  let rounds = 0
  let deleted = 0
  for (;;) {
    const round = await archive.expire()
    rounds++
    deleted += round.expired
    t.ok(round.examined <= 2, `round ${rounds} read ${round.examined} rows (at most the page size)`)
    if (round.wrapped) break
  }
  t.ok(rounds >= 3, `one pass over six rows took ${rounds} rounds`)
  t.equal(deleted, 3, 'the three expired rows were deleted')
  const left = await rows()
  t.equal(left.length, 3, 'three rows are left')
  t.ok(kept.every((r) => left.some((key) => key.endsWith(new Date(r.start).toISOString().slice(0, 19) + 'Z') && key.startsWith(`AAPL#${r.resolution}/`))), 'the rows still inside their retention')
  t.equal(archive.stats.expired, 3, 'the counter says three rows expired')
  t.equal((await archive.get(kept, now)).length, 3, 'reads still find the retained buckets')
})

t.test('expiry runs on its own timer', async (t) => {
  const archive = await EmbeddedArchive.start({ tableName: TABLE, region: 'us-east-1', expiryEveryMs: 50 })
  t.teardown(async () => await archive.close())
  const old = { ticker: 'MSFT', resolution: '1m' as const, start: bucketStart(Date.now() - 9 * HOUR, '1m') }
  await archive.put([oneItemBucket(old, { ts: old.start, id: 'old' })])
  for (let i = 0; i < 200 && archive.stats.expired === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    await archive.ping()
  }
  t.equal(archive.stats.expired, 1, 'the expired row was deleted without being asked')
})

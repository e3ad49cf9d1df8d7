import t, { type Test } from 'tap'
import { BatchGetCommand, PutCommand } from '@aws-sdk/lib-dynamodb'
import { createDynamoClients, isLocalEndpoint } from '../../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../../shared/adapters/dynamo/dynamo-archive.js'
import { EmbeddedArchive, startDynalite } from '../../shared/adapters/dynamo/embedded-dynamo.js'
import { ensureTable, tableName } from '../../shared/adapters/dynamo/table.js'
import type { Bucket } from '../../shared/timeseries/bucket.js'
import { type Resolution, DURATION_MS, RETENTION_MS, bucketEnd } from '../../shared/timeseries/resolutions.js'

const T0 = Date.parse('2025-12-21T10:00:00Z')
let tables = 0

async function setup (t: { teardown: (fn: () => unknown) => void }, options: { pageSize?: number, maxAttempts?: number } = {}) {
  const server = await startDynalite()
  t.teardown(server.close)
  const clients = createDynamoClients({ region: 'us-east-1', endpoint: server.endpoint })
  t.teardown(() => clients.client.destroy())
  const name = tableName(`test${++tables}`)
  await ensureTable(clients.client, name, { local: true })
  const archive = new DynamoArchive({ client: clients.doc, tableName: name, baseDelayMs: 1, ...options })
  return { server, clients, name, archive }
}

function bucket (i: number, resolution: Resolution = '1m', ticker = 'AAPL', rev = 1): Bucket {
  const start = T0 + i * DURATION_MS[resolution]
  return {
    ticker,
    resolution,
    start,
    open: 0.1 + i / 1000,
    high: 0.9,
    low: -0.3,
    close: -0.1 / 3,
    count: 3 + i,
    sum: 0.1 + 0.2 + i / 7,
    label_counts: { positive: 1, neutral: i, negative: 2 },
    sources: ['finnhub', 'tiingo'],
    first: { ts: start + 5, id: `first-${i}` },
    last: { ts: start + 59_000, id: `last-${i}` },
    rev,
    last_updated: start + 59_123,
    ...(i % 2 === 0 ? { seq: i * 10 } : {})
  }
}

const refOf = (b: Bucket) => ({ ticker: b.ticker, resolution: b.resolution, start: b.start })

type ContractArchive = Pick<DynamoArchive, 'put' | 'get' | 'range' | 'ping' | 'stats'>

/**
 * The archive contract, run on both ways Pulse talks to DynamoDB: the client in this
 * thread, and embedded mode's client beside dynalite in a worker thread.
 */
function contract (name: string, body: (t: Test, archive: ContractArchive) => Promise<void>): void {
  t.test(name, async (t) => {
    t.test('in process', async (t) => await body(t, (await setup(t)).archive))
    t.test('embedded, in its thread', async (t) => {
      const archive = await EmbeddedArchive.start({ tableName: tableName(`test${++tables}`), region: 'us-east-1', expiryEveryMs: 0 })
      t.teardown(async () => await archive.close())
      await body(t, archive)
    })
  })
}

t.test('ensureTable is idempotent and tolerates only dynalite missing TTL, only when local', async (t) => {
  const server = await startDynalite()
  t.teardown(server.close)
  const { client } = createDynamoClients({ region: 'us-east-1', endpoint: server.endpoint })
  t.teardown(() => client.destroy())
  t.same(await ensureTable(client, 'idem-sentiment-timeseries', { local: true }), { created: true, ttl: 'unsupported-locally' })
  t.same(await ensureTable(client, 'idem-sentiment-timeseries', { local: true }), { created: false, ttl: 'unsupported-locally' })
  await t.rejects(ensureTable(client, 'idem-sentiment-timeseries', { local: false }), { name: 'UnknownOperationException' },
    'against what claims to be real DynamoDB the error surfaces')
})

t.test('the embedded dynalite: a taken port fails the start clearly; a close in the middle of writes leaves none hanging', async (t) => {
  const first = await startDynalite()
  t.teardown(first.close)
  await t.rejects(startDynalite({ port: first.port }), /EADDRINUSE/, 'a second server on the same port')
  const { client, doc } = createDynamoClients({ region: 'us-east-1', endpoint: first.endpoint })
  t.teardown(() => client.destroy())
  await ensureTable(client, 'close-sentiment-timeseries', { local: true })
  const archive = new DynamoArchive({ client: doc, tableName: 'close-sentiment-timeseries' })
  const writes = archive.put(Array.from({ length: 60 }, (_, i) => bucket(i)))
  await new Promise((resolve) => setTimeout(resolve, 5))
  await first.close()
  const outcome = await writes
  t.equal(outcome.written.length + outcome.failed.length, 60, 'every put answered, written or failed, none left hanging')
})

t.test('the embedded archive: writes in flight when it closes are finished, a call after the close fails clearly', async (t) => {
  const archive = await EmbeddedArchive.start({ tableName: tableName(`test${++tables}`), region: 'us-east-1', expiryEveryMs: 0 })
  const writes = archive.put(Array.from({ length: 60 }, (_, i) => bucket(i)))
  await new Promise((resolve) => setTimeout(resolve, 5))
  await archive.close()
  t.equal((await writes).written.length, 60, 'the close waited for them')
  t.equal(archive.stats.writes, 60, 'counters come back with every answer')
  await t.rejects(archive.put([bucket(61)]), /embedded DynamoDB thread has stopped/)
  await t.rejects(archive.ping(), /embedded DynamoDB thread has stopped/)
})

contract('put, get and range return exactly what was written', async (t, archive) => {
  const buckets = [0, 1, 2, 3, 4].map((i) => bucket(i))
  const other = bucket(2, '5m')
  await archive.put([...buckets, other, bucket(1, '1m', 'MSFT')])
  t.strictSame(await archive.range('AAPL', '1m', T0, T0 + 5 * 60_000, T0), buckets)
  t.strictSame(await archive.range('AAPL', '5m', 0, T0 * 2, T0), [other])
  t.strictSame(await archive.get([refOf(buckets[3] as Bucket), refOf(other), { ticker: 'AAPL', resolution: '1h', start: T0 }], T0)
    .then((found) => found.sort((a, b) => a.resolution.localeCompare(b.resolution))), [buckets[3], other])
  await archive.ping()
})

t.test('ping fails for a missing table', async (t) => {
  const { clients } = await setup(t)
  await t.rejects(new DynamoArchive({ client: clients.doc, tableName: 'missing' }).ping(), { name: 'ResourceNotFoundException' })
})

contract('range is from <= start < to, with unaligned bounds', async (t, archive) => {
  await archive.put([0, 1, 2, 3].map((i) => bucket(i)))
  const starts = async (from: number, to: number) => (await archive.range('AAPL', '1m', from, to, T0)).map((b) => (b.start - T0) / 60_000)
  t.same(await starts(T0 + 60_000, T0 + 180_000), [1, 2])
  t.same(await starts(T0 + 1, T0 + 180_001), [1, 2, 3])
  t.same(await starts(T0 + 60_000, T0 + 60_000), [])
  t.same(await starts(T0 + 500, T0 + 900), [])
})

contract('put writes each bucket with its own conditional call, get reads over 100 keys in chunks', async (t, archive) => {
  const buckets = Array.from({ length: 260 }, (_, i) => bucket(i))
  const outcome = await archive.put(buckets)
  t.equal(outcome.written.length, 260, String(outcome.failure))
  t.equal(archive.stats.writes, 260)
  t.equal(archive.stats.writeCalls, 260)
  const found = await archive.get([...buckets, ...buckets.slice(0, 10)].map(refOf), T0)
  t.strictSame(found.sort((a, b) => a.start - b.start), buckets, 'all 260, duplicate refs read once')
})

contract('one call writes each bucket once, its highest rev', async (t, archive) => {
  await archive.put([bucket(0, '1m', 'AAPL', 2), bucket(0, '1m', 'AAPL', 5), bucket(0, '1m', 'AAPL', 3)])
  t.equal(archive.stats.writes, 1)
  t.equal((await archive.get([refOf(bucket(0))], T0))[0]?.rev, 5)
})

contract('expired buckets are filtered out on read', async (t, archive) => {
  const young = bucket(10)
  const old = bucket(0)
  await archive.put([old, young])
  const expiry = bucketEnd(old.start, '1m') + RETENTION_MS['1m']
  t.equal((await archive.range('AAPL', '1m', T0, T0 + 3_600_000, expiry - 1)).length, 2, 'both live just before the first expires')
  t.strictSame(await archive.range('AAPL', '1m', T0, T0 + 3_600_000, expiry), [young])
  t.strictSame(await archive.get([refOf(old), refOf(young)], expiry), [young])
  t.strictSame(await archive.get([refOf(young)], expiry + 3_600_000), [])
})

t.test('range follows pagination', async (t) => {
  const { archive } = await setup(t, { pageSize: 7 })
  const buckets = Array.from({ length: 50 }, (_, i) => bucket(i))
  await archive.put(buckets)
  t.strictSame(await archive.range('AAPL', '1m', T0, T0 + 50 * 60_000, T0), buckets)
})

contract('a put never replaces a newer or equal rev: stale states are superseded, newer ones written', async (t, archive) => {
  t.equal((await archive.put([bucket(0, '1m', 'AAPL', 5)])).written.length, 1)
  const stale = { ...bucket(0, '1m', 'AAPL', 4), count: 1 }
  const same = { ...bucket(0, '1m', 'AAPL', 5), count: 2 }
  const fresh = bucket(1, '1m', 'AAPL', 1)
  const outcome = await archive.put([stale, fresh])
  t.strictSame(outcome.superseded, [stale], 'an older rev is refused')
  t.strictSame(outcome.written, [fresh])
  t.strictSame((await archive.put([same])).superseded, [same], 'so is the same rev')
  t.strictSame(await archive.get([refOf(stale)], T0), [bucket(0, '1m', 'AAPL', 5)], 'the newest state stays')
  const newer = { ...bucket(0, '1m', 'AAPL', 6), count: 99 }
  t.strictSame((await archive.put([newer])).written, [newer])
  t.equal((await archive.get([refOf(newer)], T0))[0]?.count, 99)
  t.equal(archive.stats.superseded, 2)
})

contract('a bucket DynamoDB refuses for itself is rejected alone; the others are written', async (t, archive) => {
  // Over DynamoDB's 400 KB item limit: a state the archive can never store as it is.
  const huge = { ...bucket(0), first: { ts: T0, id: 'x'.repeat(410_000) } }
  const others = [1, 2, 3].map((i) => bucket(i))
  const outcome = await archive.put([huge, ...others])
  t.equal(outcome.rejected.length, 1)
  t.strictSame(outcome.rejected[0]?.bucket, huge)
  t.match(outcome.rejected[0]?.error, { name: 'ValidationException' })
  t.strictSame(outcome.written.sort((a, b) => a.start - b.start), others)
  t.strictSame(outcome.failed, [])
  t.equal(archive.stats.rejected, 1)
  t.equal(archive.stats.failedPuts, 0)
})

t.test('unprocessed keys are retried; an archive that stops answering fails the unwritten buckets', async (t) => {
  const { archive: plain, clients, name } = await setup(t)
  let flakyCalls = 0
  let down = false
  const send = clients.doc.send.bind(clients.doc)
  const flaky = async (command: unknown): Promise<unknown> => {
    if (command instanceof PutCommand && down) throw Object.assign(new Error('connect ECONNREFUSED'), { name: 'Error', code: 'ECONNREFUSED' })
    if (command instanceof BatchGetCommand && flakyCalls-- > 0) {
      const keys = command.input.RequestItems?.[name]?.Keys ?? []
      const out = await send(new BatchGetCommand({ RequestItems: { [name]: { Keys: keys.slice(0, 1) } } }))
      return { ...out, UnprocessedKeys: { [name]: { Keys: keys.slice(1) } } }
    }
    return await send(command as BatchGetCommand)
  }
  // The archive only calls send; the stub keeps the client's overloads out of the way.
  clients.doc.send = flaky as typeof clients.doc.send
  const archive = new DynamoArchive({ client: clients.doc, tableName: name, baseDelayMs: 1, maxAttempts: 4, writeConcurrency: 1 })
  const buckets = Array.from({ length: 20 }, (_, i) => bucket(i))
  t.equal((await archive.put(buckets)).written.length, 20)
  flakyCalls = 1
  t.equal((await archive.get(buckets.slice(0, 5).map(refOf), T0)).length, 5)
  t.equal(archive.stats.retries, 1)
  down = true
  const outcome = await archive.put([bucket(30), bucket(31), bucket(32)])
  t.equal(outcome.failed.length, 3, 'every unwritten bucket is failed')
  t.match(outcome.failure, { code: 'ECONNREFUSED' })
  t.equal(archive.stats.writeCalls, 21, 'after the first failure the rest are not tried')
  t.equal(archive.stats.failedPuts, 1)
  t.strictSame(await plain.get([refOf(bucket(30))], T0), [], 'nothing written')
})

t.test('local endpoints sign with dummy credentials when the machine has none', async (t) => {
  const none = { AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials', AWS_CONFIG_FILE: '/nonexistent/config' }
  const { client } = createDynamoClients({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1' }, none)
  t.teardown(() => client.destroy())
  t.match(await client.config.credentials(), { accessKeyId: 'local', secretAccessKey: 'local' })
  t.equal(isLocalEndpoint('http://localhost:8000'), true)
  t.equal(isLocalEndpoint('http://dynamodb-local:8000'), true)
  t.equal(isLocalEndpoint('https://dynamodb.eu-west-1.amazonaws.com'), false)
  t.equal(isLocalEndpoint(undefined), false)
})

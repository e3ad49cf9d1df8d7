import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createDynamoClients } from '../../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../../shared/adapters/dynamo/dynamo-archive.js'
import { type DynaliteServer, startDynalite } from '../../shared/adapters/dynamo/embedded-dynamo.js'
import { ensureTable, tableName } from '../../shared/adapters/dynamo/table.js'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import type { Archive } from '../../shared/ports/archive.js'
import { type Aggregate, type Bucket, type ScoredItem, foldAggregate, groupByBucket, labelFor } from '../../shared/timeseries/bucket.js'
import { bucketId, dedupeKey } from '../../shared/timeseries/keys.js'
import { RESOLUTIONS } from '../../shared/timeseries/resolutions.js'
import { foldBatch } from '../../services/aggregator/fold-batch.js'
import { type FlushResult, WriteBehind } from '../../services/aggregator/write-behind.js'

// A long file: on a loaded machine it outlasts tap's default per-file timeout.
t.setTimeout(300_000)

const NOW = Date.parse('2025-12-21T12:00:00Z')
const TICKERS = ['AAPL', 'MSFT']
const SOURCES = ['tiingo', 'finnhub', 'benzinga']

interface Logged { level: string, obj: object, msg: string }

function logger () {
  const lines: Logged[] = []
  return {
    lines,
    warn: (obj: object, msg: string) => { lines.push({ level: 'warn', obj, msg }) },
    debug: (obj: object, msg: string) => { lines.push({ level: 'debug', obj, msg }) }
  }
}

/** Deterministic items over the last three hours, with some duplicate ids carrying other content. */
function makeItems (n: number, seed = 1): ScoredItem[] {
  let x = seed
  const rand = () => { x = (x * 1103515245 + 12345) % 2 ** 31; return x / 2 ** 31 }
  const items: ScoredItem[] = []
  for (let i = 0; i < n; i++) {
    const duplicate = i > 10 && rand() < 0.05
    const score = Math.round((rand() * 2 - 1) * 1e4) / 1e4
    items.push({
      id: duplicate ? `item-${seed}-${Math.floor(rand() * i)}` : `item-${seed}-${i}`,
      ticker: TICKERS[Math.floor(rand() * TICKERS.length)] as string,
      ts: NOW - Math.floor(rand() * 3 * 3_600_000),
      score,
      label: labelFor(score),
      source: SOURCES[Math.floor(rand() * SOURCES.length)] as string
    })
  }
  return items
}

/** The same events under new ids: they fold only into buckets already loaded. */
function again (items: readonly ScoredItem[], tag: string): ScoredItem[] {
  return items.map((item) => ({ ...item, id: `${item.id}-${tag}` }))
}

/** The domain fold of the same items: first copy of each (ticker, id) counts. */
function expectedBuckets (items: readonly ScoredItem[]): Map<string, Aggregate> {
  const seen = new Set<string>()
  const unique = items.filter((item) => {
    const key = dedupeKey(item.ticker, item.id)
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
  const expected = new Map<string, Aggregate>()
  for (const ticker of TICKERS) {
    const ofTicker = unique.filter((item) => item.ticker === ticker)
    for (const [, group] of groupByBucket(ofTicker, NOW)) expected.set(bucketId(group.ref), foldAggregate(group.items) as Aggregate)
  }
  return expected
}

/** The aggregate fields other than `sum` (compared with a tolerance), in a fixed order. */
function comparable (a: Aggregate) {
  return [a.open, a.high, a.low, a.close, a.count, a.label_counts.positive, a.label_counts.neutral,
    a.label_counts.negative, a.sources, a.first, a.last]
}

async function archived (archive: Archive): Promise<Bucket[]> {
  const all: Bucket[] = []
  for (const ticker of TICKERS) {
    for (const resolution of RESOLUTIONS) all.push(...await archive.range(ticker, resolution, 0, NOW + 86_400_000, NOW))
  }
  return all
}

async function setup (t: { teardown: (fn: () => unknown) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-wb-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const servers: DynaliteServer[] = [await startDynalite({ dir })]
  t.teardown(() => Promise.all(servers.map((s) => s.close())))
  const first = servers[0] as DynaliteServer
  const clients = createDynamoClients({ region: 'us-east-1', endpoint: first.endpoint })
  t.teardown(() => clients.client.destroy())
  const name = tableName('wb')
  await ensureTable(clients.client, name, { local: true })
  const archive = new DynamoArchive({ client: clients.doc, tableName: name, baseDelayMs: 1, maxAttempts: 3 })
  const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000 })
  let clock = NOW
  const deps = { hot, archive, now: () => clock++ }
  let batches = 0
  const fold = async (items: ScoredItem[]) => await foldBatch(deps, { id: `b${batches++}`, acceptedAt: NOW, items })
  const restart = async () => {
    servers.push(await startDynalite({ dir, port: first.port }))
  }
  return { archive, hot, fold, server: first, restart }
}

t.test('10,000 items are written coalesced, and the archive ends equal to the domain fold', async (t) => {
  const { archive, hot, fold } = await setup(t)
  const log = logger()
  const writeBehind = new WriteBehind({ hot, archive, log, flushIntervalMs: 60_000 })
  const items = makeItems(10_000)
  const distinct = new Set<string>()
  let flushes = 0
  for (let i = 0; i < items.length; i += 100) {
    const report = await fold(items.slice(i, i + 100))
    for (const bucket of report.changed) distinct.add(bucketId(bucket))
    if ((i + 100) % 1000 === 0) {
      const before = archive.stats.writes
      const result = await writeBehind.flushNow()
      flushes++
      t.equal(result.failed, false)
      t.ok(archive.stats.writes - before <= distinct.size, 'at most one write per bucket per flush')
    }
  }
  t.equal(flushes, 10)
  t.ok(archive.stats.writes <= distinct.size * flushes, `${archive.stats.writes} writes <= ${distinct.size} buckets x ${flushes} flushes`)
  t.ok(archive.stats.writes < items.length * 8, 'far fewer than one write per item and resolution')
  t.equal(writeBehind.stats.bucketsWritten, archive.stats.writes)
  t.equal(writeBehind.stats.backlog, 0)
  t.equal(await hot.dirtyCount(), 0)

  const stored = await archived(archive)
  const expected = expectedBuckets(items)
  t.equal(stored.length, expected.size, 'one stored bucket per bucket of the fold')
  let mismatches = 0
  for (const bucket of stored) {
    const want = expected.get(bucketId(bucket))
    if (want === undefined || Math.abs(bucket.sum - want.sum) > 1e-9 * Math.max(1, Math.abs(want.sum))) mismatches++
    else if (JSON.stringify(comparable(bucket)) !== JSON.stringify(comparable(want))) mismatches++
  }
  t.equal(mismatches, 0, 'every stored bucket equals the domain fold of its items')
  const hotBuckets = (await hot.get(stored)).sort((a, b) => bucketId(a).localeCompare(bucketId(b)))
  t.strictSame(stored.sort((a, b) => bucketId(a).localeCompare(bucketId(b))), hotBuckets, 'and the hot state, rev included')
})

t.test('buckets changed during a write wait for the next flush', async (t) => {
  const { archive, hot, fold } = await setup(t)
  const items = makeItems(600, 2)
  await fold(items.slice(0, 300))
  const puts: string[][] = []
  let refolded = false
  const racing: Archive = {
    put: async (buckets) => {
      puts.push(buckets.map(bucketId))
      if (!refolded) {
        refolded = true
        await fold(items.slice(300))
      }
      return await archive.put(buckets)
    },
    range: archive.range.bind(archive),
    get: archive.get.bind(archive),
    nextTerm: archive.nextTerm.bind(archive),
    ping: archive.ping.bind(archive),
    close: archive.close.bind(archive)
  }
  const writeBehind = new WriteBehind({ hot, archive: racing, log: logger(), flushIntervalMs: 60_000, roundSize: 7 })
  const first = await writeBehind.flushNow()
  const ids = puts.flat()
  t.equal(new Set(ids).size, ids.length, 'no bucket written twice in one flush')
  t.ok(puts.every((round) => round.length <= 7), 'rounds respect the round size')
  t.ok(first.backlog > 0, 'buckets changed mid-write are still dirty')
  const second = await writeBehind.flushNow()
  t.equal(second.backlog, 0)
  t.strictSame(
    (await archived(archive)).sort((a, b) => bucketId(a).localeCompare(bucketId(b))),
    (await archived({ range: async (...args) => await hot.range(...args.slice(0, 4) as Parameters<typeof hot.range>) } as Archive))
      .sort((a, b) => bucketId(a).localeCompare(bucketId(b)))
  )
})

t.test('with the archive down buckets stay dirty, bounded, and are written once it is back', async (t) => {
  const { archive, hot, fold, server, restart } = await setup(t)
  const log = logger()
  const reported: FlushResult[] = []
  const writeBehind = new WriteBehind({ hot, archive, log, flushIntervalMs: 60_000, onFlushed: (result) => { reported.push(result) } })
  const loaded = makeItems(1000, 3)
  await fold(loaded)
  await server.close()
  // Folding new buckets needs the archive (read-through); these land in loaded ones.
  const items = [...loaded, ...again(loaded, 'x')]

  const failed = await writeBehind.flushNow()
  t.equal(failed.failed, true)
  t.equal(failed.written, 0)
  const dirtyAfterFirst = await hot.dirtyCount()
  t.ok(dirtyAfterFirst > 0)
  t.ok(log.lines.some((line) => line.level === 'warn' && /stay dirty/.test(line.msg)), 'a warning was logged')

  const distinct = new Set<string>()
  for (let i = 1000; i < 2000; i += 100) {
    for (const bucket of (await fold(items.slice(i, i + 100))).changed) distinct.add(bucketId(bucket))
    t.equal((await writeBehind.flushNow()).failed, true)
  }
  t.ok(await hot.dirtyCount() <= dirtyAfterFirst + distinct.size, 'backlog bounded by distinct buckets, not items')
  t.equal(writeBehind.stats.failedRounds, 11)
  t.equal(writeBehind.stats.consecutiveFailures, 11)

  await restart()
  const recovered = await writeBehind.flushNow()
  t.equal(recovered.failed, false)
  t.equal(recovered.backlog, 0)
  t.equal(writeBehind.stats.consecutiveFailures, 0)
  t.equal(reported.length, 12, 'the after-flush hook saw every flush')
  t.same(reported.at(-1), recovered)
  const stored = await archived(archive)
  t.equal(stored.length, expectedBuckets(items).size)
  t.strictSame(await hot.get(stored), stored, 'archive holds the hot state of every bucket')
})

t.test('the timer flushes every interval and backs off while the archive is down', async (t) => {
  const { archive, hot, fold, server, restart } = await setup(t)
  const writeBehind = new WriteBehind({ hot, archive, log: logger(), flushIntervalMs: 20, maxBackoffMs: 200 })
  t.teardown(() => writeBehind.stop())
  writeBehind.start()
  const items = makeItems(200, 4)
  await fold(items)
  const until = async (check: () => Promise<boolean> | boolean) => {
    for (let i = 0; i < 200 && !await check(); i++) await new Promise((resolve) => setTimeout(resolve, 25))
  }
  await until(async () => await hot.dirtyCount() === 0)
  t.equal(await hot.dirtyCount(), 0, 'written by the timer')
  await server.close()
  await fold(again(items, 'x'))
  await until(() => writeBehind.stats.consecutiveFailures >= 2)
  t.ok(writeBehind.stats.consecutiveFailures >= 2, 'failing flushes are retried')
  await restart()
  await until(async () => await hot.dirtyCount() === 0)
  t.equal(await hot.dirtyCount(), 0, 'written after the archive came back')
  const stopped = await writeBehind.stop()
  t.equal(stopped.backlog, 0)
})

t.test('backing off, the write-behind probes the archive and writes the backlog as soon as it answers', async (t) => {
  const { archive, hot, fold, server, restart } = await setup(t)
  const writeBehind = new WriteBehind({ hot, archive, log: logger(), flushIntervalMs: 100, maxBackoffMs: 60_000 })
  t.teardown(() => writeBehind.stop())
  const items = makeItems(10, 5)
  await fold(items)
  await server.close()
  writeBehind.start()
  const until = async (check: () => Promise<boolean> | boolean, ms: number) => {
    const deadline = Date.now() + ms
    while (Date.now() < deadline && !await check()) await new Promise((resolve) => setTimeout(resolve, 25))
  }
  // Six failed flushes in a row: the next timed flush is 3.2–6.4 s after the sixth.
  await until(() => writeBehind.stats.consecutiveFailures >= 6, 40_000)
  const backingOffSince = Date.now()
  t.ok(writeBehind.stats.consecutiveFailures >= 6, 'backing off')
  await restart()
  // Only a probe can write the backlog within 3 s of the sixth failure.
  await until(async () => await hot.dirtyCount() === 0, backingOffSince + 3000 - Date.now())
  t.equal(await hot.dirtyCount(), 0, 'the backlog was written long before the backoff ran out')
  t.ok(writeBehind.stats.probes > 0, 'a probe found the archive back')
  t.equal(writeBehind.stats.consecutiveFailures, 0)
})

// A reply lost in a Redis failover left one call of a flush waiting forever, and with it
// every later flush: the archive stopped being written while folds went on.
t.test('a call to the hot state that never answers fails its flush after the step timeout; the next flush writes everything', async (t) => {
  const { archive, hot, fold } = await setup(t)
  let hung = 0
  const hanging = new Proxy(hot, {
    get (target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown
      if (property === 'takeDirty' && hung === 0) {
        return () => { hung++; return new Promise(() => {}) }
      }
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  const log = logger()
  const writeBehind = new WriteBehind({ hot: hanging, archive, log, flushIntervalMs: 20, maxBackoffMs: 100, stepTimeoutMs: 3000 })
  t.teardown(() => writeBehind.stop())
  const items = makeItems(200, 5)
  await fold(items)
  writeBehind.start()
  for (let i = 0; i < 400 && await hot.dirtyCount() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 25))
  t.equal(hung, 1, 'the first flush\'s take never answered')
  t.equal(await hot.dirtyCount(), 0, 'the flushes after it wrote every bucket')
  t.equal(writeBehind.stats.stalledSteps, 1, `the stalled call is counted (${writeBehind.stats.stalledSteps})`)
  t.ok(log.lines.some((line) => line.level === 'warn' && /gave up waiting to take dirty buckets/.test(String((line.obj as { err?: Error }).err?.message))), 'and logged')
  const expected = expectedBuckets(items)
  const stored = await archived(archive)
  t.equal(stored.length, expected.size, 'the archive holds every bucket')
})

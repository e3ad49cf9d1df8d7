import { appendFile, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { armFaults } from '../../shared/fault-points.js'
import { JournalQueue } from '../../shared/adapters/journal/journal-queue.js'
import type { IngestBatch } from '../../shared/ports/ingest-queue.js'
import type { ScoredItem } from '../../shared/timeseries/bucket.js'
import { eventually, startTestPulse } from '../helpers/pulse.js'
import { sharedDynalite, uniqueEnv } from '../helpers/shared-services.js'

async function tempDir (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-journal-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  return dir
}

function items (prefix: string, count: number): ScoredItem[] {
  const now = Date.now()
  return Array.from({ length: count }, (_, i) => ({ id: `${prefix}${i}`, ticker: 'AAPL', ts: now - i, score: 0.1, label: 'positive', source: 'tiingo' }))
}

/** Opens the journal in `dir` and collects every batch it replays (and later receives). */
async function replay (dir: string): Promise<{ queue: JournalQueue, seen: IngestBatch[] }> {
  const queue = await JournalQueue.open({ dir })
  const seen: IngestBatch[] = []
  await queue.consume(async (batch) => { seen.push(batch) })
  return { queue, seen }
}

async function segmentsOf (dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.journal')).sort()
}

t.test('a torn tail is truncated on open and every acknowledged batch replays', async (t) => {
  const dir = await tempDir(t)
  const writer = await JournalQueue.open({ dir })
  await writer.enqueue(items('a', 3), 1)
  await writer.enqueue(items('b', 2), 2)
  await writer.close()
  const [segment] = await segmentsOf(dir)
  if (segment === undefined) throw new Error('no segment written')
  const path = join(dir, segment)
  const intact = (await stat(path)).size
  // A crash in the middle of the next append: half a record at the end.
  const bytes = await readFile(path)
  await appendFile(path, bytes.subarray(0, Math.floor(bytes.length / 2)))

  const first = await replay(dir)
  await eventually(() => first.seen.length === 2 ? true : undefined, 10_000, 'replay')
  t.same(first.seen.map((b) => b.items.map((i) => i.id)), [['a0', 'a1', 'a2'], ['b0', 'b1']], 'both acknowledged batches replay, in order')
  t.ok(first.seen.every((b) => b.redelivered === true), 'replayed batches are marked redelivered')
  t.equal((await stat(path)).size, intact, 'the torn tail was cut off')
  await first.queue.enqueue(items('c', 1), 3)
  await first.queue.close()

  const second = await replay(dir)
  t.teardown(async () => await second.queue.close())
  await eventually(() => second.seen.length === 3 ? true : undefined, 10_000, 'second replay')
  t.same(second.seen.map((b) => b.mark?.seq), [1, 2, 3], 'the batch acknowledged after the repair replays too')
})

t.test('an append that fails part-way is cut off before the next append', async (t) => {
  const dir = await tempDir(t)
  const queue = await JournalQueue.open({ dir })
  await queue.enqueue(items('a', 2), 1)
  // A batch larger than one write piece (64 KiB), failing after its first piece reached the file.
  armFaults('journal.append-partial=throw@1')
  t.teardown(() => armFaults(''))
  await t.rejects(queue.enqueue(items('big', 1000), 2), /journal.append-partial/, 'the failed append is not acknowledged')
  await queue.enqueue(items('c', 2), 3)
  await queue.close()

  const reopened = await replay(dir)
  t.teardown(async () => await reopened.queue.close())
  await eventually(() => reopened.seen.length === 2 ? true : undefined, 10_000, 'replay')
  t.same(reopened.seen.map((b) => b.items[0]?.id), ['a0', 'c0'], 'both acknowledged batches replay; the failed one is gone')
})

t.test('a checkpoint deletes the segments it covers, a restart replays only what follows it, and sequences number on after it', async (t) => {
  const dir = await tempDir(t)
  const first = await replay(dir)
  for (let i = 1; i <= 4; i++) await first.queue.enqueue(items(`a${i}-`, 2), i)
  await eventually(() => first.seen.length === 4 ? true : undefined, 10_000, 'folded')
  await first.queue.checkpoint(10)
  t.equal(first.queue.stats.checkpointSeq, 4, 'a checkpoint never passes what was folded')
  t.same(await segmentsOf(dir), [], 'every segment, the open one included, is deleted once covered')
  await first.queue.enqueue(items('b', 1), 5)
  await first.queue.enqueue(items('c', 1), 6)
  await eventually(() => first.seen.length === 6 ? true : undefined, 10_000, 'folded')
  await first.queue.checkpoint(5)
  await first.queue.close()

  const second = await replay(dir)
  await eventually(() => second.seen.length === 1 ? true : undefined, 10_000, 'replay')
  t.same(second.seen.map((b) => b.mark?.seq), [6], 'only the batch after the checkpoint replays')
  await second.queue.checkpoint(6)
  await second.queue.close()

  const third = await replay(dir)
  t.teardown(async () => await third.queue.close())
  await third.queue.enqueue(items('d', 1), 7)
  await eventually(() => third.seen.length === 1 ? true : undefined, 10_000, 'new batch')
  t.same(third.seen.map((b) => b.mark?.seq), [7], 'with every segment gone, new batches number on after the checkpoint')
})

t.test('an embedded Pulse on a fresh DATA_DIR counts new items into buckets an older journal left with a higher seq', async (t) => {
  // Both instances on one table, with a data directory each.
  const env = { DYNAMODB_ENDPOINT: (await sharedDynalite()).endpoint, PULSE_ENV: uniqueEnv('epoch') }
  const now = Date.now()
  const item = (id: string): Record<string, unknown> => ({ id, ticker: 'META', timestamp: new Date(now).toISOString(), score: 0.2, source: 'tiingo' })

  const first = await startTestPulse({ teardown: () => {} }, env)
  for (let i = 0; i < 5; i++) t.equal((await first.post([item(`old${i}`)])).status, 202)
  await eventually(async () => (await first.get('/api/v2/timeseries/META?resolution=24h')).body.partial_bucket?.count === 5 ? true : undefined, 10_000, 'first instance folded')
  // A graceful stop flushes every bucket, at seq 5 of the first journal, to the archive.
  await first.pulse.close()
  await rm(first.dataDir, { recursive: true, force: true })

  const second = await startTestPulse(t, env)
  t.equal((await second.post([item('new0')])).status, 202)
  const bucket = await eventually(async () => {
    const { body } = await second.get('/api/v2/timeseries/META?resolution=24h')
    return body.partial_bucket?.count === 6 ? body.partial_bucket : undefined
  }, 15_000, 'the new item counted').catch(() => undefined)
  const { body } = await second.get('/api/v2/timeseries/META?resolution=24h')
  t.ok(bucket !== undefined, `the new journal's seq 1 is folded into a bucket at seq 5 of another journal (count ${String(body.partial_bucket?.count)})`)
  t.equal(body.partial_bucket?.count, 6)
})

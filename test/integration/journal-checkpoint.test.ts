import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import t, { type Test } from 'tap'
import { foldBatch } from '../../services/aggregator/fold-batch.js'
import { WriteBehind } from '../../services/aggregator/write-behind.js'
import type { PulseAdapters } from '../../services/adapters.js'
import { createEmbeddedAdapters } from '../../services/adapters.js'
import type { JournalQueue } from '../../shared/adapters/journal/journal-queue.js'
import { loadConfig } from '../../shared/config/config.js'
import type { IngestBatch } from '../../shared/ports/ingest-queue.js'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { bucketId } from '../../shared/timeseries/keys.js'
import { differences, expectedBuckets } from '../helpers/expected.js'
import { eventually } from '../helpers/pulse.js'

// A long file: on a loaded machine it outlasts tap's default per-file timeout.
t.setTimeout(300_000)

const TICKERS = ['AAPL', 'MSFT', 'NVDA', 'TSLA']
const SEGMENT_BYTES = 16 * 1024
const silent = { warn: () => {}, debug: () => {} }

async function tempDir (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-checkpoint-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  return dir
}

function makeItems (prefix: string, count: number, now: number): ScoredItem[] {
  return Array.from({ length: count }, (_, i) => {
    const score = Math.round(Math.sin(i + prefix.length) * 90) / 100
    return { id: `${prefix}${i}`, ticker: TICKERS[i % TICKERS.length] as string, ts: now - i * 10, score, label: labelFor(score), source: 'tiingo' }
  })
}

async function journalBytes (dataDir: string): Promise<{ segments: number, bytes: number }> {
  const dir = join(dataDir, 'journal')
  let segments = 0
  let bytes = 0
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.journal')) continue
    segments++
    bytes += (await stat(join(dir, name))).size
  }
  return { segments, bytes }
}

interface Embedded {
  adapters: PulseAdapters
  queue: JournalQueue
  /** Batches the consumer was handed, in order. */
  seen: IngestBatch[]
  /** Enqueues items and waits until they are folded. */
  ingest: (items: ScoredItem[]) => Promise<void>
  writeBehind: WriteBehind
}

/**
 * The embedded adapters on `dataDir` (journal, memory hot state, dynalite on disk), their
 * queue consumed by the real fold, and a write-behind whose flushes end with the adapters'
 * after-flush hook, preceded by `beforeCheckpoint`.
 */
async function openEmbedded (t: Test, dataDir: string, beforeCheckpoint: () => Promise<void> = async () => {}): Promise<Embedded> {
  const config = loadConfig({ DATA_DIR: dataDir, DEMO_FEED: '0', INGEST_API_KEY: 'test-ingest-key-0123456789', TICKERS: TICKERS.join(',') })
  const adapters = await createEmbeddedAdapters(config, pino({ level: 'silent' }), { journal: { segmentBytes: SEGMENT_BYTES }, checkpointEveryMs: 0 })
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await adapters.close()
  }
  t.teardown(close)
  const queue = adapters.queue as JournalQueue
  const seen: IngestBatch[] = []
  await queue.consume(async (batch) => {
    seen.push(batch)
    await foldBatch({ hot: adapters.hot, archive: adapters.archive, now: Date.now }, batch)
  })
  const writeBehind = new WriteBehind({
    hot: adapters.hot,
    archive: adapters.archive,
    log: silent,
    flushIntervalMs: 1000,
    cadenceMs: {},
    onFlushed: async () => {
      await beforeCheckpoint()
      await adapters.afterFlush?.()
    }
  })
  const ingest = async (items: ScoredItem[]): Promise<void> => {
    const id = await queue.enqueue(items, Date.now())
    await eventually(() => queue.foldedSeq >= Number(id) ? true : undefined, 10_000, `batch ${id} folded`)
  }
  return { adapters, queue, seen, ingest, writeBehind }
}

t.test('under steady ingest, with dirty buckets at every flush, the journal stays bounded', async (t) => {
  const dataDir = await tempDir(t)
  const now = Date.now()
  let round = 0
  const dirtyAtCheckpoint: number[] = []
  // Each flush ends with a new batch folded and not yet written: dirty buckets always exist.
  const embedded: Embedded = await openEmbedded(t, dataDir, async () => {
    await embedded.ingest(makeItems(`r${round++}-`, 40, now))
    dirtyAtCheckpoint.push(await embedded.adapters.hot.dirtyCount())
  })
  await embedded.ingest(makeItems('start-', 40, now))
  const sizes: Array<{ segments: number, bytes: number }> = []
  for (let i = 0; i < 30; i++) {
    await embedded.writeBehind.flushNow()
    sizes.push(await journalBytes(dataDir))
  }
  const written = embedded.queue.foldedSeq
  t.ok(dirtyAtCheckpoint.every((dirty) => dirty > 0), `dirty buckets at every checkpoint (${Math.min(...dirtyAtCheckpoint)} at least)`)
  const largest = Math.max(...sizes.slice(8).map((s) => s.bytes))
  const mostSegments = Math.max(...sizes.slice(8).map((s) => s.segments))
  const last = sizes.at(-1) as { segments: number, bytes: number }
  t.comment(`${written} batches; journal after the last flush: ${last.segments} segments, ${last.bytes} bytes; largest after round 8: ${largest} bytes, ${mostSegments} segments`)
  t.ok(largest <= 3 * SEGMENT_BYTES, `journal bytes stay within three segments (${largest} ≤ ${3 * SEGMENT_BYTES})`)
  t.ok(mostSegments <= 3, `at most three segments on disk (${mostSegments})`)
})

t.test('a restart after checkpoints replays only what the archive lacks; buckets equal the fold of all accepted items; dedupe holds', async (t) => {
  const dataDir = await tempDir(t)
  const now = Date.now()
  const accepted: ScoredItem[] = []
  const first = await openEmbedded(t, dataDir)
  for (let i = 0; i < 12; i++) {
    const batch = makeItems(`a${i}-`, 40, now)
    accepted.push(...batch)
    await first.ingest(batch)
    await first.writeBehind.flushNow()
  }
  // A copy resent before the restart, and two batches folded but never written to the archive.
  const resentBefore = { ...accepted[5] as ScoredItem, score: -0.9, label: labelFor(-0.9) }
  await first.ingest([resentBefore])
  const unwritten = [...makeItems('late-', 30, now), ...makeItems('later-', 30, now)]
  accepted.push(...unwritten)
  await first.ingest(unwritten.slice(0, 30))
  await first.ingest(unwritten.slice(30))
  const checkpointSeq = first.queue.stats.checkpointSeq
  const lastSeq = first.queue.foldedSeq
  t.ok(checkpointSeq >= 12, `checkpointed through seq ${checkpointSeq} of ${lastSeq}`)
  // Stopped without a last flush or checkpoint, as a crash would leave it.
  await first.adapters.close()

  const second = await openEmbedded(t, dataDir)
  await eventually(() => second.queue.foldedSeq >= lastSeq ? true : undefined, 15_000, 'replay')
  t.same(second.seen.map((b) => b.mark?.seq), Array.from({ length: lastSeq - checkpointSeq }, (_, i) => checkpointSeq + 1 + i), 'only the batches after the checkpoint replay')
  t.ok(second.seen.every((b) => b.mark?.seq !== undefined && b.mark.seq > checkpointSeq), 'none the archive already holds')

  // Copies of items from before the checkpoint (their journal segments are gone) and after it.
  const resent = [accepted[0], accepted[100], accepted[470], unwritten[3], unwritten[45]].map((item) => ({ ...item as ScoredItem, score: 0.77, label: labelFor(0.77) }))
  await second.ingest(resent)
  await second.writeBehind.flushNow()

  const expected = expectedBuckets(accepted, Date.now())
  const refs = [...expected.values()].map((e) => e.ref)
  const stored = new Map((await second.adapters.archive.get(refs, Date.now())).map((b) => [bucketId(b), b]))
  const problems: string[] = []
  for (const [id, { aggregate }] of expected) {
    const diff = differences(stored.get(id), aggregate)
    if (diff.length > 0) problems.push(`${id}: ${diff.join(', ')}`)
  }
  t.same(problems.slice(0, 10), [], `all ${expected.size} buckets in the archive equal the fold of the first copy of every accepted item`)
  const hot = new Map((await second.adapters.hot.get(refs)).map((b) => [bucketId(b), b]))
  t.ok([...expected].every(([id, { aggregate }]) => differences(hot.get(id), aggregate).length === 0), 'and so does the hot state')
})

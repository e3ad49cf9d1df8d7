import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { IngestBatch } from '../../shared/ports/ingest-queue.js'
import { BullmqIngestQueue, cappedBackoff } from '../../shared/adapters/redis/bullmq-queue.js'
import { main as failedBatches } from '../../scripts/queue-failed.js'
import { scheduleRepeatable } from '../../shared/adapters/redis/repeatable-job.js'
import type { ScoredItem } from '../../shared/timeseries/bucket.js'
import { type Teardown, startRedisServer } from '../helpers/redis-server.js'

const server = await startRedisServer(t)

function items (n: number, prefix = 'i'): ScoredItem[] {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, ticker: 'AAPL', ts: 1_766_313_300_000 + i, score: 0.5, label: 'positive', source: 'tiingo' }))
}

async function until (check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out')
    await sleep(20)
  }
}

function newQueue (t: Teardown, options: { attempts?: number, concurrency?: number } = {}): BullmqIngestQueue {
  const queue = new BullmqIngestQueue({ url: server.url, env: `t${randomUUID().slice(0, 8)}`, backoffMs: 20, ...options })
  t.teardown(() => queue.close())
  return queue
}

t.test('enqueued batches reach the handler whole', async (t) => {
  const queue = newQueue(t)
  t.match(queue.name, /^pulse-t[0-9a-f]{8}-ingest$/)
  const ids = [await queue.enqueue(items(3), 111), await queue.enqueue(items(2, 'j'), 222)]
  t.equal(new Set(ids).size, 2, 'job ids are unique')
  t.match(await queue.counts(), { waiting: 2, active: 0, failed: 0 })
  const got: IngestBatch[] = []
  await queue.consume(async (batch) => { got.push(batch) })
  await until(() => got.length === 2)
  t.same(got.map((b) => b.id).sort(), ids.slice().sort())
  t.strictSame(got.find((b) => b.acceptedAt === 111)?.items, items(3))
  // A handled job stays active until the worker has settled it (its backlog share included).
  await until(async () => { const counts = await queue.counts(); return counts.waiting === 0 && counts.active === 0 })
  t.same(await queue.counts(), { waiting: 0, active: 0, failed: 0 }, 'completed jobs are removed')
  await queue.ping()
})

t.test('a failing handler is retried with backoff', async (t) => {
  const queue = newQueue(t)
  let calls = 0
  await queue.consume(async () => {
    calls++
    if (calls < 3) throw new Error('store unavailable')
  })
  await queue.enqueue(items(1), 1)
  await until(() => calls === 3)
  await until(async () => (await queue.counts()).waiting === 0 && (await queue.counts()).active === 0)
  t.equal((await queue.counts()).failed, 0)
})

t.test('retries back off exponentially, capped at 30 s', async (t) => {
  t.same([1, 2, 3, 4, 7, 30].map((n) => cappedBackoff(n, 500)), [500, 1000, 2000, 4000, 30_000, 30_000])
})

t.test('a batch failing every attempt lands in the failed set', async (t) => {
  const queue = newQueue(t, { attempts: 3 })
  let calls = 0
  await queue.consume(async () => {
    calls++
    throw new Error('always')
  })
  const id = await queue.enqueue(items(1), 1)
  await until(async () => (await queue.counts()).failed === 1)
  t.equal(calls, 3)
  const failed = await queue.queue.getFailed()
  t.same(failed.map((job) => job.id), [id])
  t.equal(failed[0]?.failedReason, 'always')
})

t.test('operators list failed batches and put them back on the queue', async (t) => {
  const env = `t${randomUUID().slice(0, 8)}`
  const queue = new BullmqIngestQueue({ url: server.url, env, attempts: 1 })
  t.teardown(async () => await queue.close())
  let fail = true
  const done: string[] = []
  await queue.consume(async (batch) => {
    if (fail) throw new Error('archive down')
    done.push(batch.id)
  })
  const id = await queue.enqueue(items(2), 1)
  await until(async () => (await queue.counts()).failed === 1)
  const listed = await failedBatches([], { REDIS_URL: server.url, PULSE_ENV: env })
  t.same(listed.failed.map((f) => [f.id, f.items, f.reason]), [[id, 2, 'archive down']])
  t.equal(listed.retried, 0)
  fail = false
  const retried = await failedBatches(['--retry'], { REDIS_URL: server.url, PULSE_ENV: env })
  t.equal(retried.retried, 1)
  await until(() => done.includes(id))
  t.equal((await queue.counts()).failed, 0, 'the retried batch was folded')
})

t.test('close lets the batch in hand finish', async (t) => {
  const queue = new BullmqIngestQueue({ url: server.url, env: `t${randomUUID().slice(0, 8)}` })
  let started = false
  let finished = false
  await queue.consume(async () => {
    started = true
    await sleep(300)
    finished = true
  })
  await queue.enqueue(items(1), 1)
  await until(() => started)
  await queue.close()
  t.ok(finished, 'the handler ran to the end before close resolved')
})

t.test('a repeatable job runs once per interval across processes', async (t) => {
  const env = `t${randomUUID().slice(0, 8)}`
  const runs: string[] = []
  const a = await scheduleRepeatable({ url: server.url, env }, 'finalize', 200, async (run) => { runs.push(run.jobId) })
  const b = await scheduleRepeatable({ url: server.url, env }, 'finalize', 200, async (run) => { runs.push(run.jobId) })
  t.teardown(async () => { await a.close(); await b.close() })
  await sleep(1300)
  t.ok(runs.length >= 3 && runs.length <= 9, `about one run per interval (${runs.length})`)
  t.equal(new Set(runs).size, runs.length, 'no run happened twice')
})

import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { type BucketRef, bucketId } from '../../shared/timeseries/keys.js'
import { DURATION_MS, RESOLUTIONS, bucketStart } from '../../shared/timeseries/resolutions.js'
import { item, startWriteBehindServices, until } from '../helpers/write-behind-workers.js'

/*
 * The write cadence of the Redis hot state against the real clock (take-dirty.lua reads
 * Redis's time): a test that waits for the end of a minute, apart from the other
 * write-behind tests so it waits beside them.
 */

const { worker, newCluster } = await startWriteBehindServices(t)

t.test('with a cadence a changing bucket waits for it, and a bucket that ended since its write is taken at once', async (t) => {
  const { env, table } = await newCluster()
  const w = worker(t, env, table)
  const cadence = Object.fromEntries(RESOLUTIONS.map((resolution) => [resolution, 60 * 60_000]))
  // Late in a minute, so the 1m bucket ends while the test runs.
  for (;;) {
    const second = Date.now() % 60_000
    if (second > 50_000 && second < 55_000) break
    await sleep(250)
  }
  const now = Date.now()
  const refs: BucketRef[] = RESOLUTIONS.map((resolution) => ({ ticker: 'AAPL', resolution, start: bucketStart(now, resolution) }))
  const endedBy = (at: number) => refs.filter((ref) => ref.start + DURATION_MS[ref.resolution] <= at).map(bucketId).sort()
  await w.fold([item('AAPL', now)])
  t.equal((await w.writeBehind.flushNow()).written, 8, 'first writes are never held back')
  await w.fold([item('AAPL', now + 1)])

  const before = endedBy(Date.now())
  const early = (await w.hot.takeDirty(100, cadence)).map(bucketId).sort()
  t.strictSame(early, before, 'written less than a cadence ago: only a bucket that ended since is due')
  await w.hot.release(refs)

  const oneMinuteEnd = bucketStart(now, '1m') + 60_000
  await until(t, 'the 1m bucket ends', async () => Date.now() > oneMinuteEnd + 100)
  const due = (await w.hot.takeDirty(100, cadence)).map(bucketId).sort()
  t.ok(due.includes(bucketId(refs[0] as BucketRef)), 'the 1m bucket ended after its write: due at once')
  t.strictSame(due, endedBy(Date.now()), 'and only the buckets that ended')
  await w.hot.release(refs)
  t.equal((await w.hot.takeDirty(100)).length, 8, 'without a cadence every dirty bucket is due')
})

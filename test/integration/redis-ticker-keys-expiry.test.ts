import { Redis } from 'ioredis'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { longestKeyLifeMs } from '../../shared/adapters/redis/fold-plan.js'
import { RedisKeys, dirtyMember } from '../../shared/adapters/redis/keys.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { type BucketRef } from '../../shared/timeseries/keys.js'
import { bucketStart } from '../../shared/timeseries/resolutions.js'
import { foldWithTerm } from '../helpers/fold-with-term.js'
import { startRedisServer, type Teardown } from '../helpers/redis-server.js'

const DAY = 86_400_000
/** PTTLs of one ticker's keys are read one after another: a few ms apart. */
const SLACK_MS = 1000

function item (id: string, ts: number): ScoredItem {
  return { id, ticker: 'AAPL', ts, score: 0.3, label: labelFor(0.3), source: 'tiingo' }
}

// A ticker that stops getting items (it was retired at run time) must leave no key behind
// once its buckets expire. Its position hash and its dirty-gen used to have no expiry, and
// the list of tickers the index repair reads was a set that only grew.
async function setUp (t: Teardown): Promise<{ hot: RedisHotState, redis: Redis, keys: RedisKeys, env: string, fold: (ticker: string, batch: ScoredItem[]) => Promise<void> }> {
  const server = await startRedisServer(t)
  const env = `t${randomUUID().slice(0, 8)}`
  const hot = new RedisHotState({ connection: server.url, env, dedupeWindowMs: DAY })
  t.teardown(async () => await hot.close())
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const fold = async (ticker: string, batch: ScoredItem[]): Promise<void> => {
    for (;;) {
      const outcome = await foldWithTerm(hot, ticker, batch.map((i) => ({ ...i, ticker })), { now: Date.now() })
      if (outcome.kind === 'applied') return
      await hot.seed(outcome.refs, [])
    }
  }
  return { hot, redis, keys: new RedisKeys(env), env, fold }
}

t.test("a ticker's position and dirty-gen expire with its buckets: no sooner, and not never", async (t) => {
  const { hot, redis, keys, env, fold } = await setUp(t)
  /** The PTTLs of the position and the dirty-gen, and the longest PTTL of the ticker's bucket keys. */
  const lives = async (): Promise<{ position: number, gen: number, longestBucket: number }> => {
    const bucketKeys = await redis.keys(`pulse:${env}:{AAPL}:b:*`)
    const bucketTtls = await Promise.all(bucketKeys.map(async (k) => await redis.pttl(k)))
    t.ok(bucketTtls.every((ms) => ms > 0), 'every bucket key expires')
    return { position: await redis.pttl(keys.position('AAPL')), gen: await redis.pttl(keys.dirtyGen('AAPL')), longestBucket: Math.max(...bucketTtls) }
  }
  const outlives = (life: { position: number, gen: number, longestBucket: number }, what: string): void => {
    for (const key of ['position', 'gen'] as const) {
      t.ok(life[key] > 0 && life[key] >= life.longestBucket - SLACK_MS, `${what}: the ${key} expires, no sooner than the longest-lived bucket (${life[key]} ≥ ${life.longestBucket} ms)`)
    }
  }

  const now = Date.now()
  await fold('AAPL', [item('now', now)])
  const first = await lives()
  outlives(first, 'first fold')

  // A late item writes buckets that end sooner: both keep their later expiry.
  await fold('AAPL', [item('late', now - 40 * DAY)])
  const afterLate = await lives()
  t.ok(afterLate.position >= first.position - SLACK_MS && afterLate.gen >= first.gen - SLACK_MS, `a late item does not pull the expiries in (${afterLate.position}, ${afterLate.gen} ms)`)
  outlives(afterLate, 'after a late item')

  // Keys written before expiries existed get one with the next fold.
  await redis.persist(keys.position('AAPL'))
  await redis.persist(keys.dirtyGen('AAPL'))
  await fold('AAPL', [item('next', Date.now())])
  outlives(await lives(), 'keys that had no expiry')

  // The finalizer's re-mark can start the dirty-gen afresh (a clean ticker whose gen had
  // gone): the new gen outlives the buckets it marks too.
  await redis.del(keys.dirty('AAPL'), keys.dirtyGen('AAPL'), keys.written('AAPL'))
  const ref: BucketRef = { ticker: 'AAPL', resolution: '1m', start: bucketStart(now, '1m') }
  await hot.markDirty([ref])
  t.ok(await redis.zscore(keys.dirty('AAPL'), dirtyMember(ref)) !== null, 'the re-mark marked the bucket')
  const remarked = await redis.pttl(keys.dirtyGen('AAPL'))
  const bucketLife = await redis.pttl(keys.bucket(ref))
  t.ok(remarked > 0 && remarked >= bucketLife - SLACK_MS, `a dirty-gen a re-mark starts expires no sooner than its bucket (${remarked} ≥ ${bucketLife} ms)`)
})

t.test('the tickers the index repair reads leave the list once all their keys have expired', async (t) => {
  const { redis, keys, fold } = await setUp(t)
  await fold('AAPL', [item('a', Date.now())])
  t.same(await redis.zrange(keys.indexedTickers(), 0, -1), ['AAPL'], 'a ticker with dirty buckets is listed')
  // MSFT was last indexed just longer ago than any of its keys can live.
  await redis.zadd(keys.indexedTickers(), Date.now() - longestKeyLifeMs() - 1000, 'MSFT')
  await fold('TSLA', [item('t', Date.now())])
  t.same((await redis.zrange(keys.indexedTickers(), 0, -1)).sort(), ['AAPL', 'TSLA'], 'the next index write drops the ticker with no keys left')
})
